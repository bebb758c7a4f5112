/**
 * Small busybox initrds for QEMU tests: the static busybox of Debian's `busybox-static` with a
 * symlink per applet, an /init that mounts /proc, /sys and /dev, loads the chosen kernel modules
 * (dependencies first, from the Debian kernel) and then runs the given shell script.
 *
 * Reproducible: entries sorted by name, mtime = SOURCE_DATE_EPOCH, uid/gid 0, inode numbers in
 * order, cpio "newc", gzip with a zero header time (the same bytes for the same inputs).
 *
 * Helpers inside the guest:
 *   kiln-exit N      leave QEMU through isa-debug-exit (port 0xf4): QEMU exits with (N<<1)|1
 *   kiln-poweroff    power off (QEMU exits 0)
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { join, posix } from 'node:path';
import { KilnError } from './errors.js';
import { run } from './exec.js';
import { writeFileAtomic } from './fsutil.js';
import { moduleClosure, type DebianKernel } from './kernel.js';
import { CpioWriter } from '../pkg/cpio.js';

export const BUSYBOX_CANDIDATES = ['/bin/busybox', '/usr/bin/busybox'];

export interface InitrdFile {
  /** absolute path inside the initrd: /lib/test/foo.ko */
  path: string;
  /** host file to copy */
  source?: string;
  /** or the content */
  content?: string | Buffer;
  /** default 0644, or the host file's permission bits */
  mode?: number;
}

export interface InitrdOptions {
  /** output path (.gz) */
  out: string;
  /** shell script run as the last step of /init (busybox sh, console on stdin/stdout) */
  script: string;
  files?: InitrdFile[];
  /** kernel to take modules from */
  kernel?: DebianKernel;
  /** module names loaded in /init (with their dependencies), e.g. virtio_blk ext4 */
  modules?: string[];
  sourceDateEpoch: number;
  /** static busybox binary; default /bin/busybox (Debian busybox-static) */
  busybox?: string;
  signal?: AbortSignal;
}

export interface Initrd {
  path: string;
  sha256: string;
  /** modules loaded by /init, relative to /lib/modules/KVER */
  modules: string[];
}

interface Entry {
  name: string; // no leading slash
  mode: number;
  body?: Buffer | string; // Buffer content or host path
  size: number;
  link?: string;
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

const INIT = `#!/bin/sh
# kiln initrd: mount the basics, load modules, run the test script
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /tmp /run
mount -t devpts devpts /dev/pts 2>/dev/null
if [ -f /etc/kiln/modules ]; then
  while read -r m; do
    [ -n "$m" ] && insmod "/lib/modules/$(uname -r)/$m" || echo "kiln-initrd: insmod $m failed"
  done < /etc/kiln/modules
fi
exec /bin/sh /etc/kiln/script.sh
`;

const EXIT_HELPER = `#!/bin/sh
# kiln-exit N: QEMU (with isa-debug-exit at 0xf4) exits with status (N<<1)|1
n=\${1:-0}
printf "\\\\$(printf %03o "$n")" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
# without the device: power off instead
poweroff -f
`;

const POWEROFF_HELPER = `#!/bin/sh
sync
poweroff -f
`;

export function findBusybox(): string {
  for (const c of BUSYBOX_CANDIDATES) if (existsSync(c)) return c;
  throw new KilnError('initrd: no static busybox found (Debian package: busybox-static; run: apt-get install busybox-static)');
}

/** Applet paths (bin/sh, sbin/insmod, ...) that busybox provides. */
async function applets(busybox: string, signal?: AbortSignal): Promise<string[]> {
  const r = await run([busybox, '--list-full'], { signal });
  return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
}

async function isStatic(path: string): Promise<boolean> {
  // an ELF with a PT_INTERP program header is dynamic
  const b = readFileSync(path);
  if (b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2) return false;
  const phoff = Number(b.readBigUInt64LE(0x20));
  const phentsize = b.readUInt16LE(0x36);
  const phnum = b.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) if (b.readUInt32LE(phoff + i * phentsize) === 3) return false;
  return true;
}

/** Build a reproducible gzip'd cpio initrd. */
export async function buildInitrd(opts: InitrdOptions): Promise<Initrd> {
  const busybox = opts.busybox ?? findBusybox();
  if (!(await isStatic(busybox))) throw new KilnError(`initrd: ${busybox} is not a static binary (install busybox-static)`);
  const entries = new Map<string, Entry>();
  const dirs = new Set<string>();
  const addDir = (d: string) => {
    for (let p = d; p && p !== '.' && p !== '/'; p = posix.dirname(p)) dirs.add(p);
  };
  const add = (e: Entry) => {
    if (!e.name || e.name.startsWith('/') || e.name.split('/').includes('..')) throw new KilnError(`initrd: bad path '${e.name}'`);
    entries.set(e.name, e);
    addDir(posix.dirname(e.name));
  };
  const file = (name: string, content: string | Buffer, mode = 0o644) => {
    const body = Buffer.isBuffer(content) ? content : Buffer.from(content);
    add({ name, mode: S_IFREG | mode, body, size: body.length });
  };
  const hostFile = (name: string, src: string, mode?: number) => {
    const st = statSync(src);
    if (!st.isFile()) throw new KilnError(`initrd: ${src} is not a regular file`);
    add({ name, mode: S_IFREG | (mode ?? st.mode & 0o777), body: src, size: st.size });
  };

  for (const d of ['dev', 'proc', 'sys', 'tmp', 'run', 'root', 'mnt', 'etc/kiln', 'bin', 'sbin', 'usr/bin', 'usr/sbin']) addDir(d);
  hostFile('bin/busybox', busybox, 0o755);
  for (const a of await applets(busybox, opts.signal)) {
    if (a === 'bin/busybox') continue;
    add({ name: a, mode: S_IFLNK | 0o777, link: '/bin/busybox', size: '/bin/busybox'.length });
  }
  file('init', INIT, 0o755);
  file('bin/kiln-exit', EXIT_HELPER, 0o755);
  file('bin/kiln-poweroff', POWEROFF_HELPER, 0o755);
  file('etc/kiln/script.sh', opts.script, 0o755);
  file('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n');
  file('etc/group', 'root:x:0:\n');

  let mods: string[] = [];
  if (opts.modules?.length) {
    if (!opts.kernel) throw new KilnError('initrd: modules given without a kernel');
    mods = moduleClosure(opts.kernel, opts.modules);
    for (const m of mods) hostFile(`lib/modules/${opts.kernel.version}/${m}`, join(opts.kernel.modulesDir, m), 0o644);
    file('etc/kiln/modules', mods.join('\n') + '\n');
  }
  for (const f of opts.files ?? []) {
    const name = f.path.replace(/^\/+/, '');
    if (f.source !== undefined) hostFile(name, f.source, f.mode);
    else file(name, f.content ?? '', f.mode ?? 0o644);
  }
  for (const d of dirs) if (!entries.has(d)) entries.set(d, { name: d, mode: S_IFDIR | 0o755, size: 0 });
  if (entries.get('tmp')) entries.get('tmp')!.mode = S_IFDIR | 0o1777;

  const names = [...entries.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const chunks: Buffer[] = [];
  const sink = new PassThrough();
  sink.on('data', (c: Buffer) => chunks.push(c));
  const w = new CpioWriter(sink);
  let ino = 1;
  const mtime = opts.sourceDateEpoch;
  for (const n of names) {
    const e = entries.get(n)!;
    const isDir = (e.mode & 0o170000) === S_IFDIR;
    const body = e.link !== undefined ? Buffer.from(e.link) : e.body;
    await w.add({ name: n, ino: ino++, mode: e.mode, uid: 0, gid: 0, nlink: isDir ? 2 : 1, mtime, size: e.size }, body);
  }
  await w.finish();
  const gz = gzipSync(Buffer.concat(chunks), { level: 9 });
  writeFileAtomic(opts.out, gz);
  return { path: opts.out, sha256: createHash('sha256').update(gz).digest('hex'), modules: mods };
}
