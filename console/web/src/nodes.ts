// GET /v1/nodes: the nodes sharing the store, their leases and how many
// connections each holds.
import { apiGet } from "./api";

export interface NodeInfo {
  node: string;
  until: string;
  dead: boolean;
  self: boolean;
  connections: number;
  connections_more: boolean;
}

export async function listNodes(signal?: AbortSignal): Promise<NodeInfo[]> {
  return (await apiGet<{ nodes: NodeInfo[] }>("/v1/nodes", signal)).nodes;
}
