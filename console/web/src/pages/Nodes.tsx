import { useEffect } from "preact/hooks";
import { api, type Node } from "../api";
import { Empty, ErrorBox, PageHead, Time, useLiveReload, useLoad } from "../ui";

/** The nodes sharing the store: their leases and connections. */
export function Nodes() {
  const nodes = useLoad((signal) => api().nodes({ signal }), []);
  useLiveReload((ev) => ev.type === "connected" || ev.type === "connection_closed", nodes.reload, []);
  useEffect(() => {
    const t = setInterval(nodes.reload, 5000);
    return () => clearInterval(t);
  }, []);
  return (
    <>
      <PageHead title="Nodes" sub="The servers sharing this store, each with its lease (renewed while it runs) and the connections it holds." />
      {nodes.error ? <ErrorBox error={nodes.error} /> : null}
      {nodes.value ? nodes.value.length === 0 ? <Empty>No nodes.</Empty> : <NodeTable nodes={nodes.value} /> : <Empty>Loading…</Empty>}
      <p class="note after-table">
        Connections are the WebSockets each node holds, counted up to 1000 (“1000+” beyond). A node is dead once its lease expired and another node claimed
        it: that node releases its connections, whose sessions then follow their disconnect grace.
      </p>
    </>
  );
}

/** The nodes as a table; `compact` (the overview's) leaves out the lease's end. */
export function NodeTable(p: { nodes: Node[]; compact?: boolean }) {
  return (
    <table class={p.compact ? "table compact" : "table"} data-testid={p.compact ? undefined : "nodes"}>
      <thead>
        <tr>
          <th>Node</th>
          <th>Status</th>
          {p.compact ? null : <th>Lease until</th>}
          <th class="num">Connections</th>
        </tr>
      </thead>
      <tbody>
        {p.nodes.map((n) => (
          <tr key={n.node}>
            <td>
              <span class="mono">{n.node}</span>
              {n.self ? <span class="tag">this node</span> : null}
            </td>
            <td>{n.dead ? <span class="badge badge-bad">dead</span> : <span class="badge badge-ok">alive</span>}</td>
            {p.compact ? null : (
              <td>
                <Time at={n.until} short />
              </td>
            )}
            <td class="num" title={n.connections_more ? "counted up to 1000; there are more" : undefined}>
              {n.connections}
              {n.connections_more ? "+" : ""}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
