/**
 * kiln:x509-key: a module-signing key and certificate for kernels and DKMS modules (openssl),
 * made the way the kernel's certs/Makefile makes its own signing_key.pem (x509.genkey: CA:FALSE,
 * digitalSignature, codeSigning extended key usage, subject and authority key identifiers).
 *
 *   signing_key.pem   private key followed by the certificate, mode 0600: what the kernel's
 *                     CONFIG_MODULE_SIG_KEY and scripts/sign-file take. Never packaged, never logged.
 *   signing_key.x509  the certificate, DER (what the kernel embeds; sign-file takes it too)
 *   cert.pem          the certificate, PEM (public)
 *   key.json          algorithm, subject, serial and SHA-256 fingerprint of the certificate
 *
 * A key is random: like kiln:gpg-key the part is cached and made again only when its options
 * change, so every build of a project signs with the same key (the kernel and the modules built
 * from it stay reproducible). With `private-key = FILE` an existing key is used instead and the
 * certificate is the only thing made here (its validity starts at the build time: openssl 3.0
 * cannot set notBefore).
 */
import { chmodSync, copyFileSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { KilnError } from '../lib/errors.js';
import type { Recipe } from '../kind.js';

const ALGORITHMS: Record<string, string[]> = {
  rsa2048: ['-newkey', 'rsa:2048'],
  rsa3072: ['-newkey', 'rsa:3072'],
  rsa4096: ['-newkey', 'rsa:4096'],
  // CONFIG_MODULE_SIG_KEY_TYPE_ECDSA (kernel 5.13 and later)
  'ecdsa-p384': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp384r1'],
};

/** x509.genkey of the kernel tree (certs/default_x509.genkey) with the subject from the options */
function genkeyConfig(cn: string, org: string, email: string): string {
  return [
    '[ req ]',
    'default_bits = 4096',
    'distinguished_name = req_distinguished_name',
    'prompt = no',
    'string_mask = utf8only',
    'x509_extensions = myexts',
    '',
    '[ req_distinguished_name ]',
    ...(org ? [`O = ${org}`] : []),
    `CN = ${cn}`,
    ...(email ? [`emailAddress = ${email}`] : []),
    '',
    '[ myexts ]',
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=digitalSignature',
    'extendedKeyUsage=codeSigning',
    'subjectKeyIdentifier=hash',
    'authorityKeyIdentifier=keyid',
    '',
  ].join('\n');
}

/** what a certificate subject field may hold (openssl -subj / config syntax is not escaped) */
const SUBJECT_RE = /^[^\x00-\x1f\x7f/\\=+,"]+$/;
const SUBJECT_EXPECTED = 'a subject field without / \\ = + , " or control characters';

export const recipe: Recipe = {
  kind: 'x509-key',
  version: '1',
  description: 'module-signing key and X.509 certificate (signing_key.pem, signing_key.x509) for kiln:kernel and kiln:dkms',
  options: {
    'common-name': { type: 'pattern', pattern: SUBJECT_RE, expected: SUBJECT_EXPECTED, description: 'certificate CN', default: 'kiln module signing key' },
    organization: { type: 'pattern', pattern: SUBJECT_RE, expected: SUBJECT_EXPECTED, description: 'certificate O' },
    email: { type: 'pattern', pattern: /^[^\s<>@\/\\=+,"]+@[^\s<>@\/\\=+,"]+$/, expected: 'an e-mail address', description: 'certificate emailAddress' },
    algorithm: { type: 'enum', choices: Object.keys(ALGORITHMS), noun: 'algorithm', description: 'rsa2048, rsa3072, rsa4096 or ecdsa-p384', default: 'rsa4096' },
    days: { type: 'int', min: 1, max: 36500 * 3, description: 'certificate validity in days', default: '36500' },
    'private-key': { type: 'path', description: 'an existing PEM private key to certify instead of a new one' },
  },
  validate(ctx) {
    const o = ctx.options;
    const a = o.get('algorithm')!.trim();
    if (!ALGORITHMS[a]) throw o.error('algorithm', `unsupported algorithm '${a}' (${Object.keys(ALGORITHMS).join(', ')})`);
    for (const k of ['common-name', 'organization', 'email']) {
      const v = o.get(k);
      if (v !== undefined && /[\x00-\x1f\x7f/\\=+,"]/.test(v.trim())) throw o.error(k, `characters not allowed in a certificate subject: '${v.trim()}'`);
    }
    if (!o.get('common-name')!.trim()) throw o.error('common-name', 'empty');
    const d = o.int('days', 36500);
    if (d < 1 || d > 36500 * 3) throw o.error('days', `out of range: ${d}`);
    const pk = o.path('private-key');
    if (pk && (!existsSync(pk) || !statSync(pk).isFile())) throw o.error('private-key', `file not found: ${pk}`);
  },
  inputs(ctx) {
    const pk = ctx.options.path('private-key');
    return pk ? [pk] : [];
  },
  tools: () => ['openssl'],
  async install(ctx) {
    const o = ctx.options;
    const cfg = join(ctx.work, 'x509.genkey');
    writeFileSync(cfg, genkeyConfig(o.get('common-name')!.trim(), o.get('organization')?.trim() ?? '', o.get('email')?.trim() ?? ''));
    const key = join(ctx.work, 'key.pem');
    const crt = join(ctx.work, 'cert.pem');
    // the serial: from the part and SOURCE_DATE_EPOCH (the kernel's own genkey uses a random one)
    const serial = `0x${ctx.sourceDateEpoch.toString(16).padStart(8, '0')}01`;
    const pk = o.path('private-key');
    const common = ['-x509', '-config', cfg, '-days', String(o.int('days', 36500)), '-sha256', '-set_serial', serial, '-outform', 'PEM', '-out', crt];
    if (pk) {
      copyFileSync(pk, key);
      chmodSync(key, 0o600);
      await ctx.run(['openssl', 'req', '-new', '-key', key, ...common]);
    } else {
      await ctx.run(['openssl', 'req', '-new', '-nodes', '-utf8', ...ALGORITHMS[o.get('algorithm')!.trim()]!, '-keyout', key, ...common]);
    }
    const keyText = readFileSync(key, 'utf8');
    if (!/-----BEGIN (RSA |EC )?PRIVATE KEY-----/.test(keyText)) throw new KilnError(`[${ctx.part}] openssl wrote no PEM private key`);
    if (/ENCRYPTED/.test(keyText)) throw o.error('private-key', 'the key is encrypted: the kernel build and sign-file need an unencrypted PEM key');
    const certPem = readFileSync(crt, 'utf8');
    const out = join(ctx.staging, 'signing_key.pem');
    writeFileSync(out, keyText.replace(/\n?$/, '\n') + certPem, { mode: 0o600 });
    chmodSync(out, 0o600);
    writeFileSync(join(ctx.staging, 'cert.pem'), certPem);
    await ctx.run(['openssl', 'x509', '-in', crt, '-outform', 'DER', '-out', join(ctx.staging, 'signing_key.x509')]);
    const x = new X509Certificate(certPem);
    writeFileSync(
      join(ctx.staging, 'key.json'),
      JSON.stringify({ algorithm: pk ? 'from private-key' : o.get('algorithm')!.trim(), subject: x.subject, serialNumber: x.serialNumber, validFrom: x.validFrom, validTo: x.validTo, fingerprint256: x.fingerprint256 }, null, 1) + '\n',
    );
  },
};
export default recipe;
