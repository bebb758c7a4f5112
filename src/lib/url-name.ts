/**
 * File names from URLs and paths (no I/O): what kiln:download and the plan-time defaults of the
 * SlapOS download recipe name a downloaded file. Kept apart from src/lib/download.ts so that
 * loading a project does not load the download code (streams, the store's manifests).
 */
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';

export function isUrl(s: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(s);
}

/** decodeURIComponent that leaves a malformed escape (a literal '%' in a name) as it is. */
export function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s.replace(/%[0-9a-fA-F]{2}/g, (m) => {
      try {
        return decodeURIComponent(m);
      } catch {
        return m;
      }
    });
  }
}

/**
 * The file name a download gets by default: the last component of the URL path. An http(s)
 * URL's path is percent-decoded (`hello%20world.txt` -> `hello world.txt`); a local path is used
 * as it is on disk (`foo_1%3a2.deb` stays `foo_1%3a2.deb`, as in a Debian pool), and a file://
 * URL names the file fileURLToPath finds. The result is NOT checked: callers put it through
 * containedPath() (a decoded `..%2F` is a `../`).
 */
export function urlBasename(u: string): string {
  let name: string;
  if (u.startsWith('file://')) {
    let p: string;
    try {
      p = fileURLToPath(u);
    } catch {
      p = safeDecode(new URL(u).pathname);
    }
    name = basename(p.replace(/\/+$/, ''));
  } else if (isUrl(u)) {
    const path = new URL(u).pathname.replace(/\/+$/, '');
    name = safeDecode(path.slice(path.lastIndexOf('/') + 1));
  } else name = basename(u.replace(/\/+$/, ''));
  return name || 'download';
}
