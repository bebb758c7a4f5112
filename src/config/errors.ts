import { ConfigError, type ConfigErrorWhere } from '../lib/errors.js';

/**
 * What went wrong, in terms that map 1:1 to zc.buildout's own failures
 * (the differential test compares these with the oracle's).
 */
export type ConfigErrorKind =
  | 'syntax' // configparser ParsingError / MissingSectionHeaderError
  | 'condition' // a [section: expression] header that cannot be evaluated
  | 'missing-section' // ${x:y} / <= x / => x naming an undefined section
  | 'missing-option' // ${x:y} naming an undefined option
  | 'cycle' // circular ${...} substitution
  | 'macro-loop' // <= macros that extend themselves
  | 'extends-loop' // [buildout] extends that include themselves
  | 'substitution-syntax' // malformed ${...}
  | 'io' // a file / URL that cannot be read
  | 'user'; // other zc.buildout UserErrors

/** A ConfigError raised by the config language, with its kind. */
export class ConfigLanguageError extends ConfigError {
  kind: ConfigErrorKind;
  constructor(kind: ConfigErrorKind, detail: string, where: ConfigErrorWhere = {}) {
    super(detail, where);
    this.kind = kind;
  }
}
