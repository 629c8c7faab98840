// The catalogues and the choice among them: the first of the browser's languages
// (navigator.languages, most preferred first) that has a catalogue, else English. Pure.

import { en, type Catalogue, type MessageKey } from './en.ts';
import { es } from './es.ts';

export type { Catalogue, MessageKey };

export const LANGUAGES: Readonly<Record<string, Catalogue>> = { en, es };

export interface Translator {
  /** the BCP 47 language chosen, `en` or `es` */
  readonly lang: string;
  /** the string of `key` with {name} replaced from `params` */
  (key: MessageKey, params?: Readonly<Record<string, string | number>>): string;
  /** the .one or .other form of `key` by `count` (the plural rules of the language) */
  plural(key: string, count: number, params?: Readonly<Record<string, string | number>>): string;
}

/** The language to use for the browser's list, e.g. ['es-MX', 'en'] → 'es'. */
export function chooseLanguage(preferred: readonly string[]): string {
  for (const tag of preferred) {
    const base = tag.toLowerCase().split('-')[0] ?? '';
    if (Object.hasOwn(LANGUAGES, base)) return base;
  }
  return 'en';
}

export function translator(lang: string): Translator {
  const catalogue = LANGUAGES[lang] ?? en;
  const rules = new Intl.PluralRules(lang);
  const t = ((key: MessageKey, params = {}) => fill(catalogue[key] ?? en[key], params)) as Translator;
  Object.defineProperty(t, 'lang', { value: lang });
  t.plural = (key, count, params = {}) => {
    const form = rules.select(count) === 'one' ? 'one' : 'other';
    const full = `${key}.${form}` as MessageKey;
    return fill(catalogue[full] ?? en[full] ?? key, { count, ...params });
  };
  return t;
}

function fill(template: string, params: Readonly<Record<string, string | number>>): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => (Object.hasOwn(params, name) ? String(params[name]) : whole));
}
