/** A key file that cannot be used. `key` names the JSON key at fault when there is one; the message never holds key material. */
export class KeyFileError extends Error {
  override readonly name = 'KeyFileError'
  constructor(
    readonly file: string,
    readonly key: string | undefined,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${key === undefined ? '' : `key "${key}": `}${detail}`, options)
  }
}

/** Inputs that cannot produce a per-pair key (reference: issue 6, "Per-pair key"). */
export class DerivationError extends Error {
  override readonly name = 'DerivationError'
}

/** A remote node whose rules cannot be planned (a missing key, an unusable address or CIDR). */
export class PlanError extends Error {
  override readonly name = 'PlanError'
  constructor(
    readonly node: string,
    detail: string,
  ) {
    super(`node ${node}: ${detail}`)
  }
}

/** An address, CIDR or field value the XFRM codec cannot encode, or a kernel message it cannot decode. */
export class XfrmCodecError extends Error {
  override readonly name = 'XfrmCodecError'
}

/**
 * The kernel (or the socket layer) refused an XFRM request. `errno` is the positive errno number, `code` its
 * name (`EEXIST`, `ESRCH`, `ENOSYS` …), `kernelMessage` the extended-ack text when the kernel sent one.
 */
export class XfrmError extends Error {
  override readonly name = 'XfrmError'
  constructor(
    readonly operation: string,
    readonly errno: number,
    readonly code: string,
    readonly kernelMessage?: string,
  ) {
    super(`xfrm ${operation}: ${code}${kernelMessage ? ` (${kernelMessage})` : ''}`)
  }
}
