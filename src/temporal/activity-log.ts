/**
 * Log fields of the activity a line is written in: the adapters an activity calls log through the
 * worker's logger, not the activity's, so the worker's root logger adds these to every line
 * (pino's mixin). Outside an activity there are none.
 */
import { Context } from '@temporalio/activity';

export function activityLogFields(): Record<string, string> {
  let context: Context;
  try {
    context = Context.current();
  } catch {
    return {};
  }
  const { workflowExecution, activityType } = context.info;
  return { ...(workflowExecution ? { workflowId: workflowExecution.workflowId } : {}), activity: activityType };
}
