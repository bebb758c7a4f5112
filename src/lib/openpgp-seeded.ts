/**
 * An OpenPGP Ed25519 signing key derived from a secret seed: the same seed, user id and creation
 * time give the same key bit for bit (public and secret key blocks), so a project built twice, or
 * on two machines, signs with the same key and its signed artifacts are identical.
 *
 * RFC 4880 version 4 key (the form GnuPG 2.2, apt's gpgv and rpm read): a primary EdDSA key
 * (algorithm 22, curve Ed25519, OID 1.3.6.1.4.1.11591.15.1) flagged certify + sign, one user id,
 * and a positive self-certification (SHA-256) made at the creation time. Ed25519 signatures are
 * deterministic (RFC 8032), so the self-signature is too. The private key is the HKDF-SHA256 of
 * the seed with the user id as info; the secret key block is unprotected (like `gpg --passphrase ''`).
 */
import { createHash, createPrivateKey, createPublicKey, hkdfSync, sign } from 'node:crypto';

const ED25519_OID = Buffer.from([0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01]);
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export interface SeededKey {
  /** 40 hex digits, upper case */
  fingerprint: string;
  secretArmored: string;
  publicArmored: string;
  publicBinary: Buffer;
}

const u16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
const u32 = (n: number) => Buffer.from([(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);

/** An OpenPGP MPI: bit count of the value without leading zero bits, then the value's bytes. */
function mpi(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const v = bytes.subarray(i);
  const bits = v.length * 8 - Math.clz32(v[0]!) + 24;
  return Buffer.concat([u16(v[0] === 0 ? 0 : bits), v]);
}

/** A packet with a new-format header (RFC 4880 4.2.2). */
function packet(tag: number, body: Buffer): Buffer {
  const n = body.length;
  let len: Buffer;
  if (n < 192) len = Buffer.from([n]);
  else if (n < 8384) len = Buffer.from([((n - 192) >> 8) + 192, (n - 192) & 0xff]);
  else len = Buffer.concat([Buffer.from([0xff]), u32(n)]);
  return Buffer.concat([Buffer.from([0xc0 | tag]), len, body]);
}

function subpacket(type: number, data: Buffer): Buffer {
  const n = data.length + 1;
  if (n >= 192) throw new Error('subpacket too long');
  return Buffer.concat([Buffer.from([n, type]), data]);
}

function crc24(data: Buffer): number {
  let crc = 0xb704ce;
  for (const b of data) {
    crc ^= b << 16;
    for (let i = 0; i < 8; i++) {
      crc <<= 1;
      if (crc & 0x1000000) crc ^= 0x1864cfb;
    }
  }
  return crc & 0xffffff;
}

export function armor(kind: 'PUBLIC KEY BLOCK' | 'PRIVATE KEY BLOCK', data: Buffer): string {
  const b64 = data.toString('base64').replace(/.{1,64}/g, '$&\n');
  const c = crc24(data);
  const crc = Buffer.from([(c >> 16) & 0xff, (c >> 8) & 0xff, c & 0xff]).toString('base64');
  return `-----BEGIN PGP ${kind}-----\n\n${b64}=${crc}\n-----END PGP ${kind}-----\n`;
}

/**
 * Derive the key. `seed` must carry at least 32 bytes (the caller checks its entropy source);
 * `created` is the key's creation time and the self-signature's (seconds since the epoch).
 */
export function seededEd25519Key(seed: Buffer, uid: string, created: number): SeededKey {
  if (seed.length < 32) throw new Error(`the seed has ${seed.length} bytes, at least 32 are needed`);
  if (!Number.isInteger(created) || created < 0 || created > 0xffffffff) throw new Error(`bad creation time ${created}`);
  const secret = Buffer.from(hkdfSync('sha256', seed, Buffer.from('kiln seeded OpenPGP Ed25519 key v1'), Buffer.from(uid, 'utf8'), 32));
  const priv = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, secret]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(priv).export({ format: 'der', type: 'spki' });
  const pub = spki.subarray(spki.length - 32);

  // public key packet body (RFC 4880 5.5.2; RFC 9580 for the EdDSA fields)
  const pubBody = Buffer.concat([Buffer.from([4]), u32(created), Buffer.from([22, ED25519_OID.length]), ED25519_OID, mpi(Buffer.concat([Buffer.from([0x40]), pub]))]);
  const fpr = createHash('sha1').update(Buffer.concat([Buffer.from([0x99]), u16(pubBody.length), pubBody])).digest();
  const keyId = fpr.subarray(12);

  // secret key packet: public body, no S2K (usage 0), the secret as an MPI, two-octet checksum
  const secMpi = mpi(secret);
  let sum = 0;
  for (const b of secMpi) sum = (sum + b) & 0xffff;
  const secBody = Buffer.concat([pubBody, Buffer.from([0]), secMpi, u16(sum)]);

  const uidBytes = Buffer.from(uid, 'utf8');
  // positive certification (0x13) of the user id, SHA-256 (8), EdDSA (22)
  const hashed = Buffer.concat([
    subpacket(2, u32(created)), // signature creation time
    subpacket(27, Buffer.from([0x03])), // key flags: certify, sign
    subpacket(11, Buffer.from([9, 8, 7, 2])), // preferred symmetric: AES256, AES192, AES128, 3DES
    subpacket(21, Buffer.from([10, 9, 8, 11])), // preferred hashes: SHA512, SHA384, SHA256, SHA224
    subpacket(22, Buffer.from([2, 3, 1])), // preferred compression: ZLIB, BZip2, ZIP
    subpacket(30, Buffer.from([0x01])), // features: modification detection
    subpacket(33, Buffer.concat([Buffer.from([4]), fpr])), // issuer fingerprint
  ]);
  const sigHead = Buffer.concat([Buffer.from([4, 0x13, 22, 8]), u16(hashed.length), hashed]);
  const digest = createHash('sha256')
    .update(Buffer.concat([Buffer.from([0x99]), u16(pubBody.length), pubBody]))
    .update(Buffer.concat([Buffer.from([0xb4]), u32(uidBytes.length), uidBytes]))
    .update(sigHead)
    .update(Buffer.concat([Buffer.from([4, 0xff]), u32(sigHead.length)]))
    .digest();
  // EdDSA in OpenPGP signs the digest; the signature is R and S as two MPIs
  const rs = sign(null, digest, priv);
  const unhashed = subpacket(16, keyId); // issuer key id
  const sigBody = Buffer.concat([sigHead, u16(unhashed.length), unhashed, digest.subarray(0, 2), mpi(rs.subarray(0, 32)), mpi(rs.subarray(32))]);

  const uidPacket = packet(13, uidBytes);
  const sigPacket = packet(2, sigBody);
  const publicBinary = Buffer.concat([packet(6, pubBody), uidPacket, sigPacket]);
  const secretBinary = Buffer.concat([packet(5, secBody), uidPacket, sigPacket]);
  return {
    fingerprint: fpr.toString('hex').toUpperCase(),
    publicBinary,
    publicArmored: armor('PUBLIC KEY BLOCK', publicBinary),
    secretArmored: armor('PRIVATE KEY BLOCK', secretBinary),
  };
}
