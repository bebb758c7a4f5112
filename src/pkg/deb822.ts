/**
 * deb822 control files (control, Packages, Sources, Release, .dsc, .changes).
 * Minimal writer; the full lossless parser/writer is tracked in issue 3.
 */

/** Format one paragraph from ordered [field, value] pairs. Multi-line values are folded deb822-style. */
export function formatParagraph(fields: Array<[string, string]>): string {
  let out = '';
  for (const [name, value] of fields) {
    if (!/^[!-9;-~][!-9;-~]*$/.test(name) || name.startsWith('#') || name.startsWith('-')) {
      throw new Error(`invalid deb822 field name: ${JSON.stringify(name)}`);
    }
    const lines = value.split('\n');
    out += `${name}: ${lines[0]}\n`;
    for (const l of lines.slice(1)) out += l.trim() === '' ? ' .\n' : ` ${l.replace(/^ /, '')}\n`;
  }
  return out;
}
