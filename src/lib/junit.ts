/** JUnit XML reports (what CI systems read), one testsuite per part. */
export interface TestCase {
  name: string;
  seconds: number;
  /** failure message, when the test failed */
  failure?: string;
  output?: string;
}

const esc = (s: string) =>
  s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!).replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');

export function junitXml(suite: string, cases: TestCase[]): string {
  const failures = cases.filter((c) => c.failure !== undefined).length;
  const time = cases.reduce((t, c) => t + c.seconds, 0);
  let x = `<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="${esc(suite)}" tests="${cases.length}" failures="${failures}" errors="0" time="${time.toFixed(3)}">\n`;
  for (const c of cases) {
    x += `  <testcase classname="${esc(suite)}" name="${esc(c.name)}" time="${c.seconds.toFixed(3)}">`;
    if (c.failure !== undefined) x += `\n    <failure message="${esc(c.failure.split('\n')[0]!)}">${esc(c.failure)}</failure>`;
    if (c.output) x += `\n    <system-out>${esc(c.output)}</system-out>`;
    x += c.failure !== undefined || c.output ? '\n  </testcase>\n' : '</testcase>\n';
  }
  return x + '</testsuite>\n';
}
