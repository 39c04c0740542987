/**
 * Patch ids of workflow changes that alter commands (`patched()`): a run whose history lacks the
 * marker replays the code it started with. Never reuse or rename one.
 */
export const PATCHES = {
  /**
   * Fence lease and forward, one point-DNS-back undo, DNS compare-and-swap on the whole record,
   * tear-down by role, one lock per environment, fewer history events (docs/switch-protocol.md).
   */
  protocolV2: 'switch-protocol-v2',
  /**
   * Rollback takes the stack the live one forwards to from planning, which follows forwards,
   * instead of asking the live stack itself first.
   */
  rollbackFollowsForward: 'rollback-follows-forward',
  /** Pointing DNS back moves the writer back where DNS still points when DNS cannot be changed. */
  writerFollowsDns: 'writer-follows-dns',
  /** The environment's `notify:` targets are told of a switch's or rehearsal's events (one activity per event). */
  notifications: 'switch-notifications',
  /** While verifying, every item of the old (frozen) stack is compared with the new one; a mismatch rolls back. */
  verifyData: 'verify-data-after-flip',
  /**
   * Pointing DNS back hands the writer over in one short activity (renew, unfence, forward) with
   * the stack it returns to undrained first, instead of an unfence and a forward that a pause
   * between them longer than the lease turned into two writers.
   */
  handOverInOneCall: 'hand-over-in-one-call',
  /**
   * Fencing tokens: every change of a fence names the epoch it expects (takeFence, copyUnderFence,
   * commitForward, handOverWriter, releaseFence instead of the activities of earlier runs); the
   * hand-over commits on the stack being left before the other opens; unfenced catch-up passes
   * right before every fence (after approval, before a rollback's fence); the write pause has a
   * ceiling (maxWritePauseSeconds); pointing back copies nothing when the writer never moved.
   */
  fencingTokens: 'fencing-tokens',
  /**
   * Rollback takes where it goes from and to from the roles of planning's look at the environment
   * (src/switch/roles.ts), instead of listing the stacks and asking each candidate in turn.
   */
  stackRoles: 'stack-roles',
  /**
   * The copy under a fence starts once every node of the fenced stack resolved the writes the fence
   * caught in flight (copyUnderFence's `fromNodes`), so it carries their undos and the commit after
   * it is not refused as behind.
   */
  settleCaughtWrites: 'settle-caught-writes',
  /**
   * A commit refused as behind (CopyBehind) leaves the old stack fenced: the write pause, its
   * ceiling and the report count from the first fence, not from the fence taken again.
   */
  pauseFromFirstFence: 'pause-from-first-fence',
} as const;
