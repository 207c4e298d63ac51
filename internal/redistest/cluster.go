package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// ClusterNodes is how many masters a test cluster has.
const ClusterNodes = 3

// TestCluster is a Redis Cluster of ClusterNodes masters, no replicas,
// that a test owns.
type TestCluster struct {
	Nodes []*Server
}

// Cluster starts a cluster for the test and returns its URL:
// redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3.
func Cluster(t testing.TB) string {
	t.Helper()
	return StartCluster(t).URL()
}

// StartCluster starts ClusterNodes servers with cluster mode on, on free
// ports, joins them with redis-cli --cluster create (the slots split
// evenly, no replicas), and returns once every node reports
// cluster_state:ok and knows every other.
func StartCluster(t testing.TB) *TestCluster {
	t.Helper()
	requireBinaries(t, "redis-server", "redis-cli")
	c := &TestCluster{}
	for i := range ClusterNodes {
		s := newServer(t, fmt.Sprintf("cluster node %d", i), kindClusterNode, Config{})
		s.startOnFreePorts()
		c.Nodes = append(c.Nodes, s)
	}
	args := []string{"--cluster", "create"}
	for _, n := range c.Nodes {
		args = append(args, n.Addr())
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "redis-cli", args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	err := start(cmd)
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil {
		t.Fatalf("redistest: redis-cli %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	if err := c.waitFormed(); err != nil {
		t.Fatalf("redistest: the cluster did not form: %v\nredis-cli said:\n%s", err, out.String())
	}
	return c
}

// URL returns the cluster's URL, every node named.
func (c *TestCluster) URL() string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr()
	}
	return "redis+cluster://" + strings.Join(addrs, ",")
}

// waitFormed waits until every node reports cluster_state:ok, every slot
// served and every node known.
func (c *TestCluster) waitFormed() error {
	want := map[string]string{
		"cluster_state":          "ok",
		"cluster_slots_ok":       "16384",
		"cluster_known_nodes":    fmt.Sprint(len(c.Nodes)),
		"cluster_slots_assigned": "16384",
	}
	for _, n := range c.Nodes {
		err := pollUntil(func() error {
			reply, err := n.command("CLUSTER", "INFO")
			if err != nil {
				return fmt.Errorf("%s: CLUSTER INFO: %w", n.Addr(), err)
			}
			info := replyString(reply)
			for field, v := range want {
				if got := infoField(info, field); got != v {
					return fmt.Errorf("%s: %s:%s, want %s", n.Addr(), field, got, v)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// infoField returns the value of name in an INFO-style reply.
func infoField(info, name string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
