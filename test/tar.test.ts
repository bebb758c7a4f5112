// TarWriter against GNU tar: for the same entries (names of 99/100/101/255 bytes, multibyte UTF-8
// names cut inside a character, long link targets, setuid/sticky modes, empty files, ids too large
// for octal) our archive is byte-identical to `tar --format=gnu`, and GNU tar lists and extracts it.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, utimesSync, writeFileSync, lutimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { TarWriter, type TarHeader } from '../src/pkg/tar.js';

const MTIME = 1700000000;

interface E {
  name: string; // relative, no './'
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  content?: Buffer;
  target?: string;
}

async function ours(entries: E[], uid = 0, uname = 'root'): Promise<Buffer> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const tar = new TarWriter(out);
  for (const e of entries) {
    const h: TarHeader = {
      name: './' + e.name + (e.type === 'dir' && e.name ? '/' : ''),
      type: e.type,
      mode: e.mode,
      uid,
      gid: 0,
      uname,
      gname: 'root',
      mtime: MTIME,
      size: e.content?.length ?? 0,
      linkname: e.target,
    };
    await tar.add(h, e.type === 'file' ? e.content : undefined);
  }
  await tar.finish();
  return Buffer.concat(chunks);
}

/** The same entries on disk, archived by GNU tar in the same order (as dpkg-deb runs it). */
function gnu(entries: E[], owner = 'root:0'): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-tar-'));
  const root = join(dir, 'r');
  mkdirSync(root);
  for (const e of entries) {
    const p = join(root, e.name);
    if (e.type === 'dir') mkdirSync(p, { recursive: true });
    else if (e.type === 'symlink') symlinkSync(e.target!, p);
    else writeFileSync(p, e.content ?? '');
    if (e.type !== 'symlink') chmodSync(p, e.mode);
  }
  for (const e of [...entries].reverse()) {
    const p = join(root, e.name);
    if (e.type === 'symlink') lutimesSync(p, MTIME, MTIME);
    else utimesSync(p, MTIME, MTIME);
  }
  const list = entries.map((e) => (e.name ? `./${e.name}` : '.')).join('\0') + '\0';
  return execFileSync('tar', ['-cf', '-', '--format=gnu', `--mtime=@${MTIME}`, '--clamp-mtime', `--owner=${owner}`, '--group=root:0', '--null', '--no-unquote', '--no-recursion', '-C', root, '-T', '-'], {
    input: list,
    maxBuffer: 1 << 28,
  });
}

const seg = (c: string, n: number) => c.repeat(n);

describe('TarWriter', () => {
  test('byte-identical to GNU tar for long names, long links, special modes and empty files', async () => {
    const d1 = 'usr/share/' + seg('d', 80); // 90 bytes
    const entries: E[] = [
      { name: '', type: 'dir', mode: 0o755 },
      { name: 'usr', type: 'dir', mode: 0o755 },
      { name: 'usr/share', type: 'dir', mode: 0o755 },
      { name: d1, type: 'dir', mode: 0o755 },
      { name: `${d1}/${seg('a', 5)}`, type: 'file', mode: 0o644, content: Buffer.from('98\n') }, // ./ + 96 = 98
      { name: `${d1}/${seg('b', 6)}`, type: 'file', mode: 0o644, content: Buffer.alloc(0) }, // 99 bytes
      { name: `${d1}/${seg('c', 7)}`, type: 'file', mode: 0o4755, content: Buffer.from('#!/bin/sh\n') }, // 100 bytes
      { name: `${d1}/${seg('e', 8)}`, type: 'file', mode: 0o2755, content: Buffer.alloc(513, 1) }, // 101 bytes
      { name: `${d1}/${seg('f', 150)}`, type: 'file', mode: 0o600, content: Buffer.alloc(10000, 7) },
      { name: `${d1}/${'é'.repeat(60)}`, type: 'file', mode: 0o644, content: Buffer.from('utf8') }, // cut inside a character
      { name: `${d1}/sticky`, type: 'dir', mode: 0o1777 },
      { name: `${d1}/${seg('g', 120)}`, type: 'dir', mode: 0o750 },
      { name: 'usr/l99', type: 'symlink', mode: 0o777, target: seg('t', 99) },
      { name: 'usr/l100', type: 'symlink', mode: 0o777, target: seg('t', 100) },
      { name: 'usr/l101', type: 'symlink', mode: 0o777, target: '/' + seg('t', 200) },
      { name: `${d1}/${seg('h', 120)}-link`, type: 'symlink', mode: 0o777, target: '../' + seg('u', 150) },
    ];
    const a = await ours(entries);
    const b = gnu(entries);
    expect(a.length % 10240).toBe(0);
    expect(a.length).toBe(b.length);
    expect(a.equals(b)).toBe(true);
    // and GNU tar reads it back
    const dir = mkdtempSync(join(tmpdir(), 'kiln-tarx-'));
    writeFileSync(join(dir, 'a.tar'), a);
    const listing = execFileSync('tar', ['-tvf', join(dir, 'a.tar'), '--numeric-owner'], { encoding: 'utf8' });
    expect(listing).toContain(`-rwsr-xr-x 0/0`);
    expect(listing).toContain(`drwxrwxrwt 0/0`);
    expect(listing).toContain(`./usr/l101 -> /${seg('t', 200)}`);
    mkdirSync(join(dir, 'x'));
    execFileSync('tar', ['-xf', join(dir, 'a.tar'), '-C', join(dir, 'x')]);
    expect(readFileSync(join(dir, 'x', d1, seg('f', 150))).equals(Buffer.alloc(10000, 7))).toBe(true);
    expect(readFileSync(join(dir, 'x', d1, 'é'.repeat(60)), 'utf8')).toBe('utf8');
  });

  test('ids too large for octal use GNU base-256, as GNU tar does', async () => {
    const entries: E[] = [{ name: 'big-uid', type: 'file', mode: 0o644, content: Buffer.from('x') }];
    const a = await ours(entries, 3000000, 'someone');
    const b = gnu(entries, 'someone:3000000');
    expect(a.equals(b)).toBe(true);
    const listing = execFileSync('tar', ['-tvf', '-', '--numeric-owner'], { input: a, encoding: 'utf8' });
    expect(listing).toContain('3000000/0');
  });

  test('a body that does not match the declared size is an error, not a corrupt archive', async () => {
    const out = new PassThrough();
    out.resume();
    const tar = new TarWriter(out);
    await expect(tar.add({ name: './x', type: 'file', mode: 0o644, uid: 0, gid: 0, uname: 'root', gname: 'root', mtime: 0, size: 5 }, Buffer.from('abc'))).rejects.toThrow(/changed size/);
  });

  test('a failing output rejects pending writes instead of hanging', async () => {
    const out = new PassThrough({ highWaterMark: 1024 }); // never read: backpressure
    const tar = new TarWriter(out);
    // more than the writer queues (8 MiB) before it waits for the consumer
    const p = tar.add({ name: './x', type: 'file', mode: 0o644, uid: 0, gid: 0, uname: 'root', gname: 'root', mtime: 0, size: 16 << 20 }, Buffer.alloc(16 << 20));
    setImmediate(() => out.destroy(new Error('compressor died')));
    await expect(p).rejects.toThrow(/compressor died/);
  });
});

describe('output blocks are reused with a consumer that takes them at once', () => {
  test('20 MiB of host file content through a synchronous writer: a few 1 MiB blocks, not one per MiB', async () => {
    const { Writable } = await import('node:stream');
    const { vi } = await import('vitest');
    const d = mkdtempSync(join(tmpdir(), 'kiln-tar-recycle-'));
    const content = Buffer.alloc(20 << 20);
    for (let i = 0; i < content.length; i += 4096) content[i] = i >> 12;
    writeFileSync(join(d, 'big'), content);
    const got: Buffer[] = [];
    // like compress.ts's file writer: the bytes are written (here: copied) before the callback
    const out = new Writable({
      write(c: Buffer, _e, cb) {
        got.push(Buffer.from(c));
        cb();
      },
    });
    const spy = vi.spyOn(Buffer, 'allocUnsafeSlow');
    try {
      const tar = new TarWriter(out, { recycle: true });
      for (let i = 0; i < 2; i++) await tar.add({ name: `./big${i}`, type: 'file', mode: 0o644, uid: 0, gid: 0, uname: 'root', gname: 'root', mtime: MTIME, size: content.length }, join(d, 'big'));
      await tar.finish();
      const blocks = spy.mock.calls.filter(([n]) => n >= 1 << 20).length;
      expect(blocks).toBeLessThanOrEqual(4);
    } finally {
      spy.mockRestore();
    }
    // and the archive still holds the right bytes
    const all = Buffer.concat(got);
    expect(all.subarray(512, 512 + content.length).equals(content)).toBe(true);
    expect(all.subarray(1024 + content.length, 1024 + 2 * content.length).equals(content)).toBe(true);
  });
});
