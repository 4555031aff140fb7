#!/usr/bin/env bash
# Points the repository's citations at docs/ (run once the source edits in flight have landed; safe to run again):
#   1. in every tracked .ts .mjs .c .h .md .proto file outside docs/ (the citation test excepted), a citation of
#      one of our four reference documents, `reference/<name>.md`, becomes `docs/reference/<name>.md`.
#      Already-prefixed citations (`docs/reference/...`) are left alone; the old workspace forms `shared/reference/<name>.md` and
#      `/work/shared/reference/<name>.md` become `docs/reference/<name>.md` too (not `shared/docs/reference/...`).
#      A citation broken over a comment line (`reference/` at the end of one line, `<name>.md` on the next) is
#      rewritten as well. Section numbers (`§2.3`) and everything else on the line stay as they are.
#   2. README.md: the design link `../shared/architecture.md` (outside the repository) becomes `docs/architecture.md`.
#   3. only with --toolchain: the comments in tools/vm that point at the workspace's `shared/toolchain.md`
#      (`../../shared/toolchain.md`, `../../../shared/toolchain.md`) point at docs/toolchain.md instead.
# Citations of other projects' documents (turbo's `reference/run.md` and the like) are not touched: only the four
# names below are. Afterwards: pnpm exec tap tools/testkit/test/doc-citations.test.ts
#
# Usage: bash docs/rewrite-citations.sh [--toolchain] [--dry-run]
set -euo pipefail
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"

toolchain=0
dry=0
for arg in "$@"; do
  case "$arg" in
    --toolchain) toolchain=1 ;;
    --dry-run) dry=1 ;;
    *) echo "usage: $0 [--toolchain] [--dry-run]" >&2; exit 2 ;;
  esac
done

DOCS='istio-l4-authz|istio-workload-api|kmesh-dataplane|local-config'
for name in istio-l4-authz istio-workload-api kmesh-dataplane local-config; do
  [ -f "docs/reference/$name.md" ] || { echo "docs/reference/$name.md is missing: nothing rewritten" >&2; exit 1; }
done

changed=0
# $1: perl substitution program; rest: files. Rewrites (or, with --dry-run, lists) the files it would change.
rewrite() {
  local program=$1; shift
  local f
  for f in "$@"; do
    [ -f "$f" ] || continue
    if ! perl -0777 -ne "$program; exit(\$changed ? 0 : 1)" -- "$f" 2>/dev/null; then continue; fi
    changed=$((changed + 1))
    if [ "$dry" = 1 ]; then echo "would rewrite $f"; else perl -0777 -i -pe "$program" -- "$f"; echo "rewrote $f"; fi
  done
}

# 1. reference citations. The look-behind keeps `docs/reference/`, `../reference/` and `shared/reference/` out of
#    the plain rule; the shared forms have their own rule first.
CITE='
  our $changed;
  $changed += s{(?:/work/)?(?:\.\./)*shared/reference/((?:'"$DOCS"')\.md)}{docs/reference/$1}g;
  $changed += s{(?<![A-Za-z0-9_./-])reference/((?:[ \t]*\r?\n[ \t]*(?:\*|//|#)?[ \t]*)?(?:'"$DOCS"')\.md)}{docs/reference/$1}g;
'
# (not docs/, whose pages cite each other relatively, nor the citation test, whose examples show every form)
mapfile -d '' files < <(git ls-files -z -- '*.ts' '*.mjs' '*.c' '*.h' '*.md' '*.proto' \
  ':!:docs/**' ':!:**/node_modules/**' ':!:tools/testkit/test/doc-citations.test.ts')
rewrite "$CITE" "${files[@]}"

# 2. the README's design link (and its "outside this repository" remark, which is no longer true).
README='
  our $changed;
  $changed += s{\[`shared/architecture\.md`\]\(\.\./shared/architecture\.md\) \(outside this repository, in the workspace\)}{[`docs/architecture.md`](docs/architecture.md)}g;
  $changed += s{\]\(\.\./shared/architecture\.md\)}{](docs/architecture.md)}g;
'
rewrite "$README" README.md

# 3. optional: toolchain pointers in tools/vm (relative to the repository root in comments; a real relative link
#    in tools/vm/README.md).
if [ "$toolchain" = 1 ]; then
  VM_README='our $changed; $changed += s{\(also in \.\./\.\./\.\./shared/toolchain\.md\)}{(also in [docs/toolchain.md](../../docs/toolchain.md))}g;'
  rewrite "$VM_README" tools/vm/README.md
  VM_COMMENTS='our $changed; $changed += s{(?:\.\./)+shared/toolchain\.md}{docs/toolchain.md}g;'
  rewrite "$VM_COMMENTS" tools/vm/fetch.sh tools/vm/guest/stage2.sh tools/vm/src/run.ts
fi

echo "$changed file(s) $([ "$dry" = 1 ] && echo 'would change' || echo 'changed')"
