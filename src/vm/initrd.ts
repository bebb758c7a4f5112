/**
 * Reproducible busybox initrds for QEMU tests: cpio "newc" + gzip written natively, entries
 * sorted, mtime = SOURCE_DATE_EPOCH, uid/gid 0, so the same inputs give the same bytes.
 *
 * Contents: /bin/busybox (busybox-static) and /bin/sh, /dev/console, the /init script, extra
 * files, and kernel modules copied from the kernel's modules dir with their dependencies
 * (modules.dep), listed in load order in /lib/modules/kiln-load-order.
 *
 * With `preamble` (the default) /init is kiln's: it mounts /proc, /sys, /dev (devtmpfs),
 * installs the busybox applets, loads the modules, prints `kiln: init ready`, runs the given
 * script (/kiln/init.sh) with sh and reports its exit status through isa-debug-exit
 * (`kiln-exit N`: writes N to port 0xf4, QEMU exits with (N<<1)|1). Without it, the given
 * script is /init as it is.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, readlinkSync, writeFileSync, renameSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { gzipSync } from 'node:zlib';
import { KilnError } from '../lib/errors.js';
import type { Kernel } from './kernel.js';
import { resolveModules } from './kernel.js';

export const BUSYBOX = '/bin/busybox';

export interface InitrdFile {
  /** absolute path inside the guest */
  to: string;
  /** host file to copy (content is read when the initrd is built) */
  from?: string;
  /** or the content itself */
  content?: string | Buffer;
  /** permission bits; default: the host file's, or 0644 (0755 for content starting with #!) */
  mode?: number;
}

export interface InitrdSpec {
  /** the init script (shell) */
  init: string;
  /** wrap `init` in kiln's preamble (mounts, busybox applets, modules, exit status via port 0xf4) */
  preamble?: boolean;
  /** with the preamble: `exec` the script (it becomes PID 1, e.g. to switch_root into a real
   *  root file system) instead of running it and reporting its exit status */
  execInit?: boolean;
  files?: InitrdFile[];
  /** kernel modules to include and load (names: virtio_blk, ext4), with their dependencies;
   *  virtio_pci is added when any virtio_* module is asked for */
  modules?: string[];
  /** kernel the modules come from (needed with modules) */
  kernel?: Kernel;
  /** host busybox binary; must be static (busybox-static) */
  busybox?: string;
  sourceDateEpoch?: number;
}

export interface InitrdResult {
  path: string;
  /** module files in load order, relative to the kernel's modules dir */
  modules: string[];
  /** requested modules built into the kernel */
  builtin: string[];
  entries: number;
  /** SHA-256 of the initrd file */
  sha256: string;
}

/** kiln's /init wrapper around the user's script. */
export function preambleScript(execInit = false): string {
  return `#!/bin/sh
# kiln initrd preamble
/bin/busybox mkdir -p /proc /sys /dev /tmp /run /mnt
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TERM=dumb
if [ -f /lib/modules/kiln-load-order ]; then
  while read -r m; do
    [ -n "$m" ] || continue
    insmod "/lib/modules/$m" || { echo "kiln: insmod $m failed"; kiln-exit 98; }
  done < /lib/modules/kiln-load-order
fi
echo "kiln: init ready"
${execInit ? 'exec sh /kiln/init.sh' : 'sh /kiln/init.sh\nkiln-exit $?'}
`;
}

/** `kiln-exit N`: report N through isa-debug-exit (port 0xf4), then power off. */
export function exitScript(): string {
  return `#!/bin/sh
s=\${1:-0}
echo "kiln: exit status $s"
printf "\\\\$(printf %o $((s & 255)))" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
# no isa-debug-exit device: power off instead
poweroff -f
sleep 5
`;
}

interface Entry {
  name: string; // without leading slash
  mode: number; // full st_mode
  data: Buffer;
  rdevMajor?: number;
  rdevMinor?: number;
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

const hex8 = (n: number) => (n >>> 0).toString(16).padStart(8, '0');

/** cpio newc archive of the entries, in the given order. */
export function cpioNewc(entries: Entry[], mtime: number): Buffer {
  const parts: Buffer[] = [];
  let off = 0;
  const push = (b: Buffer) => {
    parts.push(b);
    off += b.length;
  };
  const pad = () => {
    const p = (4 - (off % 4)) % 4;
    if (p) push(Buffer.alloc(p));
  };
  let ino = 1;
  const one = (e: Entry, isTrailer = false) => {
    const name = Buffer.from(e.name + '\0');
    const isDir = (e.mode & 0o170000) === S_IFDIR;
    const h =
      '070701' +
      hex8(isTrailer ? 0 : ino++) +
      hex8(e.mode) +
      hex8(0) +
      hex8(0) +
      hex8(isDir ? 2 : 1) +
      hex8(isTrailer ? 0 : mtime) +
      hex8(e.data.length) +
      hex8(0) +
      hex8(0) +
      hex8(e.rdevMajor ?? 0) +
      hex8(e.rdevMinor ?? 0) +
      hex8(name.length) +
      hex8(0);
    push(Buffer.from(h, 'ascii'));
    push(name);
    pad();
    if (e.data.length) {
      push(e.data);
      pad();
    }
  };
  for (const e of entries) one(e);
  one({ name: 'TRAILER!!!', mode: 0, data: Buffer.alloc(0) }, true);
  return Buffer.concat(parts);
}

function guestPath(p: string): string {
  if (!p.startsWith('/')) throw new KilnError(`initrd: guest paths are absolute: '${p}'`);
  const n = posix.normalize(p).replace(/^\/+/, '').replace(/\/+$/, '');
  if (!n || n.split('/').includes('..')) throw new KilnError(`initrd: bad guest path '${p}'`);
  return n;
}

/** Build the initrd at `out` (written atomically). */
export function buildInitrd(out: string, spec: InitrdSpec): InitrdResult {
  const busybox = spec.busybox ?? BUSYBOX;
  if (!existsSync(busybox)) throw new KilnError(`${busybox} not found: install the Debian package busybox-static (apt-get install busybox-static, or bash scripts/setup.sh)`);
  const bb = readFileSync(busybox);
  if (hasInterpreter(bb)) {
    throw new KilnError(`${busybox} is dynamically linked: install busybox-static (the initrd has no C library)`);
  }
  const mtime = spec.sourceDateEpoch ?? 0; // a parameter: the engine reads the environment, not this module
  const entries = new Map<string, Entry>();
  const addDirs = (name: string) => {
    const segs = name.split('/');
    for (let i = 1; i < segs.length; i++) {
      const d = segs.slice(0, i).join('/');
      if (!entries.has(d)) entries.set(d, { name: d, mode: S_IFDIR | 0o755, data: Buffer.alloc(0) });
      else if ((entries.get(d)!.mode & 0o170000) !== S_IFDIR) throw new KilnError(`initrd: /${d} is a file and a directory`);
    }
  };
  const add = (e: Entry) => {
    addDirs(e.name);
    entries.set(e.name, e);
  };
  const file = (to: string, data: Buffer, mode: number) => add({ name: guestPath(to), mode: S_IFREG | (mode & 0o7777), data });

  for (const d of ['dev', 'proc', 'sys', 'tmp', 'run', 'mnt', 'root', 'etc', 'bin', 'sbin', 'usr/bin', 'usr/sbin', 'lib/modules']) add({ name: d, mode: S_IFDIR | 0o755, data: Buffer.alloc(0) });
  add({ name: 'dev/console', mode: S_IFCHR | 0o600, data: Buffer.alloc(0), rdevMajor: 5, rdevMinor: 1 });
  add({ name: 'dev/null', mode: S_IFCHR | 0o666, data: Buffer.alloc(0), rdevMajor: 1, rdevMinor: 3 });
  file('/bin/busybox', bb, 0o755);
  add({ name: 'bin/sh', mode: S_IFLNK | 0o777, data: Buffer.from('busybox') });

  const init = Buffer.from(spec.init.endsWith('\n') ? spec.init : spec.init + '\n');
  if (spec.preamble !== false) {
    file('/init', Buffer.from(preambleScript(spec.execInit)), 0o755);
    file('/kiln/init.sh', init, 0o755);
    file('/bin/kiln-exit', Buffer.from(exitScript()), 0o755);
  } else {
    file('/init', init, 0o755);
    file('/bin/kiln-exit', Buffer.from(exitScript()), 0o755);
  }

  let resolved = { load: [] as string[], builtin: [] as string[] };
  if (spec.modules?.length) {
    if (!spec.kernel) throw new KilnError('initrd: modules need a kernel to take them from');
    // virtio devices sit on PCI: their drivers are useless without virtio_pci (a module in Debian)
    const wanted = spec.modules.some((m) => /^virtio[_-]/.test(m)) ? ['virtio_pci', ...spec.modules] : spec.modules;
    resolved = resolveModules(spec.kernel.modulesDir, wanted);
    for (const rel of resolved.load) {
      file(`/lib/modules/${spec.kernel.version}/${rel}`, readFileSync(join(spec.kernel.modulesDir, rel)), 0o644);
    }
    file('/lib/modules/kiln-load-order', Buffer.from(resolved.load.map((r) => `${spec.kernel!.version}/${r}\n`).join('')), 0o644);
  }

  for (const f of spec.files ?? []) {
    if (f.from !== undefined) {
      const st = lstatSync(f.from);
      if (st.isSymbolicLink()) add({ name: guestPath(f.to), mode: S_IFLNK | 0o777, data: Buffer.from(readlinkSync(f.from)) });
      else if (st.isFile()) file(f.to, readFileSync(f.from), f.mode ?? st.mode);
      else throw new KilnError(`initrd: ${f.from} is not a regular file`);
    } else if (f.content !== undefined) {
      const data = Buffer.isBuffer(f.content) ? f.content : Buffer.from(f.content);
      file(f.to, data, f.mode ?? (data.subarray(0, 2).toString() === '#!' ? 0o755 : 0o644));
    } else throw new KilnError(`initrd: ${f.to} needs 'from' or 'content'`);
  }

  const sorted = [...entries.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const gz = gzipSync(cpioNewc(sorted, mtime), { level: 6 });
  const tmp = join(dirname(out), `.${process.pid}.${Date.now()}.initrd.tmp`);
  writeFileSync(tmp, gz);
  renameSync(tmp, out);
  return { path: out, modules: resolved.load, builtin: resolved.builtin, entries: sorted.length, sha256: createHash('sha256').update(gz).digest('hex') };
}

/** True for a dynamically linked ELF64 executable (it has a PT_INTERP program header). */
export function hasInterpreter(elf: Buffer): boolean {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2) return false;
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const off = phoff + i * phentsize;
    if (off + 4 <= elf.length && elf.readUInt32LE(off) === 3) return true;
  }
  return false;
}
