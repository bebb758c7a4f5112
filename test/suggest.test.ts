// Typo suggestions (src/engine/suggest.ts), on their own: no project, no I/O.
import { expect, test } from 'vitest';
import { didYouMean, editDistance, nearMisses } from '../src/engine/suggest.js';

test('edit distance, "did you mean" and near misses', () => {
  expect(editDistance('kitten', 'sitting')).toBe(3);
  expect(editDistance('', 'abc')).toBe(3);
  expect(editDistance('same', 'same')).toBe(0);
  expect(didYouMean('commnad', ['command', 'argv', 'outputs'])).toBe(" (did you mean 'command'?)");
  expect(didYouMean('zzzzzz', ['command', 'argv'])).toBe('');
  // short names: one edit at most makes a near miss; longer ones two
  expect(nearMisses('url', new Set(['uri', 'path']))).toEqual(['uri']);
  expect(nearMisses('ur', new Set(['url', 'uri', 'u']))).toEqual(['url', 'uri', 'u']);
  expect(nearMisses('packges', new Set(['packages', 'package', 'pkg']))).toEqual(['packages', 'package']);
  expect(nearMisses('packages', new Set(['packages']))).toEqual([]);
});
