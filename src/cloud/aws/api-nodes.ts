/**
 * The API nodes of an app stack (infra/app-stack.yaml): CloudFormation knows the Auto Scaling
 * group (logical id ApiGroup), the group knows its instances, EC2 knows their private addresses.
 * Drain, its evidence and per-node stats need each node, not the load balancer in front of them.
 */
import { DescribeAutoScalingGroupsCommand, type AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { DescribeStackResourcesCommand, type CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { DescribeInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { CloudError } from '../errors.ts';
import { awsCall } from './classify.ts';

/** The template's logical id of the API nodes' Auto Scaling group. */
export const API_GROUP = 'ApiGroup';
/** The port the API nodes listen on (the template's target group and user data). */
export const API_NODE_PORT = 8080;

export interface ApiInstance {
  instanceId: string;
  privateAddress: string;
  /** EC2 state: pending, running, stopping, stopped, shutting-down, terminated. */
  state: string;
}

export interface NodeDiscoveryClients {
  cloudFormation: CloudFormationClient;
  autoScaling: AutoScalingClient;
  ec2: EC2Client;
}

export const nodeUrl = (address: string): string => `http://${address}:${API_NODE_PORT}`;

/** The stack's API instances, ordered by instance id; a stack without an ApiGroup has none. */
export async function apiInstances(clients: NodeDiscoveryClients, stack: string): Promise<ApiInstance[]> {
  // Every resource of the stack, not a lookup of ApiGroup by id: a stack of another template has
  // none, and moto answers that lookup with an HTML 500 instead of AWS's "does not exist".
  const resources = await awsCall('cloudformation:DescribeStackResources', stack, () =>
    clients.cloudFormation.send(new DescribeStackResourcesCommand({ StackName: stack })),
  );
  // Optional chaining on the answer too: a stubbed client (tests of other adapters) answers nothing.
  const groupName = resources?.StackResources?.find((r) => r.LogicalResourceId === API_GROUP)?.PhysicalResourceId;
  if (!groupName) return [];
  const groups = await awsCall('autoscaling:DescribeAutoScalingGroups', groupName, () =>
    clients.autoScaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [groupName] })),
  );
  const ids = (groups.AutoScalingGroups?.[0]?.Instances ?? [])
    .map((i) => i.InstanceId)
    .filter((id): id is string => !!id);
  if (!ids.length) return [];
  const instances: ApiInstance[] = [];
  let nextToken: string | undefined;
  do {
    const page = await awsCall('ec2:DescribeInstances', groupName, () =>
      clients.ec2.send(new DescribeInstancesCommand({ InstanceIds: ids, NextToken: nextToken })),
    );
    for (const instance of (page.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
      if (!instance.InstanceId || !instance.PrivateIpAddress) continue;
      instances.push({
        instanceId: instance.InstanceId,
        privateAddress: instance.PrivateIpAddress,
        state: instance.State?.Name ?? 'unknown',
      });
    }
    nextToken = page.NextToken;
  } while (nextToken);
  return instances.sort((a, b) => a.instanceId.localeCompare(b.instanceId));
}
