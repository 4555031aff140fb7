/**
 * The YAML tags of policy string matchers (docs/reference/local-config.md §2.5). They only tell the parser the
 * tags are known; policy.ts reads the tag from each node and checks the shape (`!Presence []`, `!Exact x`).
 */
import type { CollectionTag, ScalarTag } from 'yaml'

const scalar = (tag: string): ScalarTag => ({ tag, resolve: (s: string) => s })

export const YAML_TAGS: Array<ScalarTag | CollectionTag> = [
  scalar('!Exact'),
  scalar('!Prefix'),
  scalar('!Suffix'),
  scalar('!Presence'),
  { tag: '!Presence', collection: 'seq', resolve: (seq) => seq } as CollectionTag,
]
