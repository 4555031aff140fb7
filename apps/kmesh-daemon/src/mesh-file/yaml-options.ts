/** The yaml package's options, shared by the whole-document and the chunked reader. */
import type { DocumentOptions, ParseOptions, SchemaOptions } from 'yaml'

import { YAML_TAGS } from './yaml-tags.js'

export const YAML_OPTIONS: ParseOptions & DocumentOptions & SchemaOptions = {
  // Failsafe schema: every scalar stays a string and scalars.ts types it as serde_yaml would.
  schema: 'failsafe',
  customTags: YAML_TAGS,
  uniqueKeys: false, // duplicates are reported by reader.ts with the entry and key
  merge: false,
  prettyErrors: false,
}

/** The yaml package reports its own stack overflow (deep nesting the pre-scan missed) as errors. */
export function isStackOverflow(message: string): boolean {
  return /call stack/i.test(message)
}
