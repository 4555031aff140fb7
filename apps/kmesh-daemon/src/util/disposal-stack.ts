/**
 * What a stop unwinds: each resource started pushes how to release it; disposeAll() releases them last started
 * first, and a release that fails is reported and does not keep the ones below it from being released. (Node 20
 * has Symbol.asyncDispose but not AsyncDisposableStack; this is the part of it the daemon needs.)
 */
export class DisposalStack {
  private readonly stack: (() => unknown)[] = []

  /** Releases `release` when the stack is disposed, before everything deferred earlier. */
  defer(release: () => unknown): void {
    this.stack.push(release)
  }

  /** Releases everything, last deferred first; `onError` hears each failure. Safe to call again (a no-op). */
  async disposeAll(onError: (err: unknown) => void): Promise<void> {
    while (this.stack.length) {
      const release = this.stack.pop()!
      try {
        await release()
      } catch (err) {
        onError(err)
      }
    }
  }
}
