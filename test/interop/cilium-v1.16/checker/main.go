// cilium-interop-checker reads what a clustermesh-apiserver (ours, or Cilium's KVStoreMesh) put into
// etcd and judges every key with Cilium's own types, decoders and validators at the pinned release,
// the way a Cilium agent / KVStoreMesh connected to that etcd would. It prints one JSON report.
//
//	cilium-interop-checker check  --etcd-config FILE --cluster-name NAME [--prefix cilium/]
//	cilium-interop-checker decode --cluster-name NAME --cluster-id N   (JSON lines {"key","value"} on stdin)
//
// Where Cilium's validator is unexported, the same check is written here with Cilium's exported
// building blocks and the source it mirrors is named next to it.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	serviceStore "github.com/cilium/cilium/pkg/service/store"
	cmtypes "github.com/cilium/cilium/pkg/clustermesh/types"
	"github.com/cilium/cilium/pkg/identity"
	"github.com/cilium/cilium/pkg/identity/key"
	"github.com/cilium/cilium/pkg/kvstore"
	"github.com/cilium/cilium/pkg/labels"
	nodeStore "github.com/cilium/cilium/pkg/node/store"
	"github.com/cilium/cilium/pkg/version"
	clientv3 "go.etcd.io/etcd/client/v3"
	clientyaml "go.etcd.io/etcd/client/v3/yaml"
)

// Verdict of one key.
type Verdict struct {
	Key     string `json:"key"`
	Kind    string `json:"kind"`
	Verdict string `json:"verdict"` // accepted | rejected | ignored
	Reason  string `json:"reason,omitempty"`
	// Canonical is Cilium's own encoding of the decoded value (json.Marshal, as its writers do):
	// equal to the input bytes when the writer used the same shape as this release.
	Canonical string `json:"canonical,omitempty"`
}

// Canary is one sync marker a Cilium reader waits for before it starts a kind's watcher.
type Canary struct {
	Key        string   `json:"key"`
	Present    bool     `json:"present"`
	RequiredBy []string `json:"requiredBy"`
}

// Report is the checker's output.
type Report struct {
	Cilium           string                       `json:"cilium"`
	Cluster          string                       `json:"cluster"`
	ClusterConfig    *cmtypes.CiliumClusterConfig `json:"clusterConfig,omitempty"`
	ClusterConfigErr string                       `json:"clusterConfigError,omitempty"`
	HasClusterConfig bool                         `json:"hasClusterConfigKey"`
	Keys             []Verdict                    `json:"keys"`
	Counts           map[string]map[string]int    `json:"counts"`
	Canaries         []Canary                     `json:"canaries,omitempty"`
	MissingCanaries  []string                     `json:"missingCanaries"`
	RejectedCount    int                          `json:"rejected"`
}

// judge holds what a reader of one remote cluster knows: its name and (from its config) its id.
type judge struct {
	cluster   string
	clusterID uint32
	// canonical of the last accepted node/service/ipcache value
	canonical string
}

func (j *judge) remarshal(v interface{ Marshal() ([]byte, error) }) {
	if b, err := v.Marshal(); err == nil {
		j.canonical = string(b)
	}
}

// statePrefixes in Cilium 1.16 (pkg/node/store, pkg/service/store, pkg/identity/cache,
// pkg/ipcache). 1.16 has no MCS-API service-export store in the kvstore (added in 1.17); the
// prefix is named here only to classify such keys as not read.
const (
	nodesPrefix          = "cilium/state/nodes/v1"
	servicesPrefix       = "cilium/state/services/v1"
	identitiesPrefix     = "cilium/state/identities/v1"
	ipPrefix             = "cilium/state/ip/v1"
	serviceExportsPrefix = "cilium/state/serviceexports/v1"
)

func (j *judge) evaluate(k string, value []byte) Verdict {
	j.canonical = ""
	kind, err := j.evaluateKind(k, value)
	v := Verdict{Key: k, Kind: kind, Verdict: "accepted", Canonical: j.canonical}
	switch {
	case errors.Is(err, errIgnored):
		v.Verdict = "ignored"
		v.Reason = err.Error()
	case err != nil:
		v.Verdict = "rejected"
		v.Reason = err.Error()
	}
	return v
}

var errIgnored = errors.New("not read by Cilium")

func ignored(why string) error { return fmt.Errorf("%w: %s", errIgnored, why) }

// splitCluster splits "<cluster>/<rest>" for the cluster-scoped state prefixes.
func (j *judge) underCluster(rest string) (string, error) {
	cluster, suffix, ok := strings.Cut(rest, "/")
	if !ok || cluster != j.cluster {
		return "", ignored(fmt.Sprintf("belongs to cluster %q, not %q (never watched)", cluster, j.cluster))
	}
	return suffix, nil
}

func (j *judge) evaluateKind(k string, value []byte) (string, error) {
	switch {
	case k == kvstore.HeartbeatPath:
		// Readers react to events on the key; the value is not parsed (pkg/kvstore/etcd.go).
		return "heartbeat", nil
	case k == "cilium/.has-cluster-config":
		// Cilium <= 1.15 (pkg/clustermesh/utils.IsClusterConfigRequired): presence only.
		return "has-cluster-config", nil
	case strings.HasPrefix(k, kvstore.ClusterConfigPrefix+"/"):
		name := strings.TrimPrefix(k, kvstore.ClusterConfigPrefix+"/")
		if err := cmtypes.ValidateClusterName(name); err != nil {
			return "cluster-config", fmt.Errorf("cluster name %q: %w", name, err)
		}
		var config cmtypes.CiliumClusterConfig
		// pkg/clustermesh/clustercfg.Get
		if err := json.Unmarshal(value, &config); err != nil {
			return "cluster-config", err
		}
		local := cmtypes.ClusterInfo{Name: "cilium-interop-checker", ID: 0, MaxConnectedClusters: cmtypes.ClusterIDMax}
		return "cluster-config", local.ValidateRemoteConfig(config)
	case strings.HasPrefix(k, kvstore.SyncedPrefix+"/"):
		// Canaries: readers wait for their presence; the value is not parsed (pkg/kvstore/store/watchstoremgr.go).
		return "synced-canary", nil
	case strings.HasPrefix(k, nodesPrefix+"/"):
		suffix, err := j.underCluster(strings.TrimPrefix(k, nodesPrefix+"/"))
		if err != nil {
			return "node", err
		}
		return "node", j.node(suffix, value)
	case strings.HasPrefix(k, servicesPrefix+"/"):
		suffix, err := j.underCluster(strings.TrimPrefix(k, servicesPrefix+"/"))
		if err != nil {
			return "service", err
		}
		return "service", j.service(suffix, value)
	case strings.HasPrefix(k, identitiesPrefix+"/id/"):
		return "identity", j.identity(strings.TrimPrefix(k, identitiesPrefix+"/id/"), value)
	case strings.HasPrefix(k, identitiesPrefix+"/"):
		return "identity", ignored("not an id/ key (the remote identity cache watches only id/)")
	case strings.HasPrefix(k, ipPrefix+"/default/"):
		return "ipcache", j.ip(strings.TrimPrefix(k, ipPrefix+"/default/"), value)
	case strings.HasPrefix(k, ipPrefix+"/"):
		return "ipcache", ignored("outside the default address space")
	case strings.HasPrefix(k, serviceExportsPrefix+"/"):
		return "serviceexport", ignored("Cilium 1.16 has no MCS-API service-export store")
	case strings.HasPrefix(k, kvstore.CachePrefix+"/"):
		return j.cached(strings.TrimPrefix(k, kvstore.CachePrefix+"/"), value)
	}
	return "other", ignored("no Cilium reader watches this key")
}

// cached judges KVStoreMesh's copies: cilium/cache/<kind>/v1/<cluster>/... (pkg/clustermesh/
// kvstoremesh/remote_cluster.go; the agent reads them with the same decoders, remote_cluster.go).
func (j *judge) cached(rest string, value []byte) (string, error) {
	kind, rest, _ := strings.Cut(rest, "/v1/")
	suffix, err := j.underCluster(rest)
	switch kind {
	case "nodes":
		if err != nil {
			return "cached-node", err
		}
		return "cached-node", j.node(suffix, value)
	case "services":
		if err != nil {
			return "cached-service", err
		}
		return "cached-service", j.service(suffix, value)
	case "identities":
		if err != nil {
			return "cached-identity", err
		}
		id, ok := strings.CutPrefix(suffix, "id/")
		if !ok {
			return "cached-identity", ignored("not an id/ key")
		}
		return "cached-identity", j.identity(id, value)
	case "ip":
		if err != nil {
			return "cached-ipcache", err
		}
		return "cached-ipcache", j.ip(suffix, value)
	}
	return "cached-other", ignored("unknown cached kind " + kind)
}

// node: the agent's remote node store, pkg/clustermesh/clustermesh.go (NewRemoteCluster).
func (j *judge) node(suffix string, value []byte) error {
	n := nodeStore.ValidatingKeyCreator(
		nodeStore.ClusterNameValidator(j.cluster),
		nodeStore.NameValidator(),
		nodeStore.ClusterIDValidator(&j.clusterID),
	)()
	if err := n.Unmarshal(suffix, value); err != nil {
		return err
	}
	j.remarshal(&n.(*nodeStore.ValidatingNode).Node)
	return nil
}

// service: the agent's remote service store, pkg/clustermesh/clustermesh.go (NewRemoteCluster).
func (j *judge) service(suffix string, value []byte) error {
	s := serviceStore.KeyCreator(
		serviceStore.ClusterNameValidator(j.cluster),
		serviceStore.NamespacedNameValidator(),
		serviceStore.ClusterIDValidator(&j.clusterID),
	)()
	if err := s.Unmarshal(suffix, value); err != nil {
		return err
	}
	j.remarshal(&s.(*serviceStore.ValidatingClusterService).ClusterService)
	return nil
}

// identity: pkg/kvstore/allocator (kvstoreBackend.keyToID, ListAndWatch) decodes the key and
// value; pkg/identity/cache/allocator.go (clusterIDValidator, clusterNameValidator, unexported)
// validates. Mirrored here with the same building blocks.
func (j *judge) identity(suffix string, value []byte) error {
	id, err := strconv.ParseUint(suffix, 10, 64)
	if err != nil {
		return fmt.Errorf("Cannot parse key suffix %q", suffix)
	}
	if len(value) == 0 {
		return errors.New("Received a key with an empty value")
	}
	gi := (&key.GlobalIdentity{}).PutKey(string(value)).(*key.GlobalIdentity)
	minID := uint64(identity.GetMinimalAllocationIdentity(j.clusterID))
	maxID := uint64(identity.GetMaximumAllocationIdentity(j.clusterID))
	if id < minID || id > maxID {
		return fmt.Errorf("ID %d does not belong to the allocation range of cluster ID %d", id, j.clusterID)
	}
	found := false
	for _, lbl := range gi.LabelArray {
		if lbl.Key != "io.cilium.k8s.policy.cluster" {
			continue
		}
		switch {
		case lbl.Source != labels.LabelSourceK8s:
			return fmt.Errorf("unexpected source for cluster label: got %s, expected %s", lbl.Source, labels.LabelSourceK8s)
		case lbl.Value != j.cluster:
			return fmt.Errorf("unexpected cluster name: got %s, expected %s", lbl.Value, j.cluster)
		default:
			found = true
		}
	}
	if !found {
		return errors.New("could not find expected label io.cilium.k8s.policy.cluster")
	}
	return nil
}

// ip: identity.IPIdentityPair.Unmarshal (key must equal PrefixString) plus the watcher's "<nil>"
// skip in pkg/ipcache/kvstore.go (OnUpdate). Cilium 1.16's watcher has no identity-range
// validator (1.17 added WithIdentityValidator): an entry whose identity lies outside the remote
// cluster's range is accepted.
// https://github.com/cilium/cilium/blob/v1.16.17/pkg/ipcache/kvstore.go#L290-L298
func (j *judge) ip(suffix string, value []byte) error {
	var pair identity.IPIdentityPair
	if err := pair.Unmarshal(suffix, value); err != nil {
		return err
	}
	if pair.PrefixString() == "<nil>" {
		return errors.New("entry with nil IP is skipped")
	}
	j.remarshal(&pair)
	return nil
}

// canaries lists the sync markers Cilium 1.16 readers of `cluster` wait for, given its config:
// the agent (pkg/clustermesh/remote_cluster.go Run) and KVStoreMesh (pkg/clustermesh/kvstoremesh/
// remote_cluster.go Run). 1.16 has no service-export canary.
func canaries(cluster string, config cmtypes.CiliumClusterConfig, present map[string]bool) []Canary {
	if !config.Capabilities.SyncedCanaries {
		return nil
	}
	adapter := func(p string) string { return p }
	if config.Capabilities.Cached {
		adapter = kvstore.StateToCachePrefix
	}
	var out []Canary
	add := func(prefix string, by ...string) {
		k := kvstore.SyncedPrefix + "/" + cluster + "/" + adapter(prefix)
		out = append(out, Canary{Key: k, Present: present[k], RequiredBy: by})
	}
	add(nodesPrefix, "agent", "kvstoremesh")
	add(servicesPrefix, "agent", "kvstoremesh")
	add(ipPrefix, "agent", "kvstoremesh")
	add(identitiesPrefix, "agent", "kvstoremesh")
	return out
}

func newReport(cluster string) *Report {
	return &Report{Cilium: version.Version, Cluster: cluster, Keys: []Verdict{}, Counts: map[string]map[string]int{}, MissingCanaries: []string{}}
}

func (r *Report) add(v Verdict) {
	r.Keys = append(r.Keys, v)
	if r.Counts[v.Kind] == nil {
		r.Counts[v.Kind] = map[string]int{}
	}
	r.Counts[v.Kind][v.Verdict]++
	if v.Verdict == "rejected" {
		r.RejectedCount++
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "cilium-interop-checker: "+format+"\n", args...)
	os.Exit(2)
}

func initClusterIDMax(maxConnected uint) {
	if err := (cmtypes.ClusterInfo{MaxConnectedClusters: uint32(maxConnected)}).InitClusterIDMax(); err != nil {
		fail("--max-connected-clusters: %v", err)
	}
}

func check(args []string) {
	fs := flag.NewFlagSet("check", flag.ExitOnError)
	etcdConfig := fs.String("etcd-config", "", "etcd client YAML (the format of Cilium's --clustermesh-config files)")
	cluster := fs.String("cluster-name", "", "the remote cluster whose data is judged")
	prefix := fs.String("prefix", "cilium/", "etcd prefix to read")
	maxConnected := fs.Uint("max-connected-clusters", 255, "255 or 511")
	_ = fs.Parse(args)
	if *etcdConfig == "" || *cluster == "" {
		fail("check needs --etcd-config and --cluster-name")
	}
	initClusterIDMax(*maxConnected)
	cfg, err := clientyaml.NewConfig(*etcdConfig)
	if err != nil {
		fail("reading %s: %v", *etcdConfig, err)
	}
	cfg.DialTimeout = 10 * time.Second
	client, err := clientv3.New(*cfg)
	if err != nil {
		fail("connecting: %v", err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	report := newReport(*cluster)
	j := &judge{cluster: *cluster}
	// What the agent does first: read and validate the cluster config (its id scopes the rest).
	configKey := kvstore.ClusterConfigPrefix + "/" + *cluster
	if resp, err := client.Get(ctx, configKey); err != nil {
		report.ClusterConfigErr = err.Error()
	} else if len(resp.Kvs) == 0 {
		report.ClusterConfigErr = "not found"
	} else {
		var config cmtypes.CiliumClusterConfig
		if err := json.Unmarshal(resp.Kvs[0].Value, &config); err != nil {
			report.ClusterConfigErr = err.Error()
		} else {
			report.ClusterConfig = &config
			j.clusterID = config.ID
		}
	}
	if resp, err := client.Get(ctx, "cilium/.has-cluster-config"); err == nil {
		report.HasClusterConfig = len(resp.Kvs) > 0
	}

	resp, err := client.Get(ctx, *prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		fail("listing %s: %v", *prefix, err)
	}
	present := map[string]bool{}
	for _, kv := range resp.Kvs {
		present[string(kv.Key)] = true
		report.add(j.evaluate(string(kv.Key), kv.Value))
	}
	if report.ClusterConfig != nil {
		report.Canaries = canaries(*cluster, *report.ClusterConfig, present)
		for _, c := range report.Canaries {
			if !c.Present {
				report.MissingCanaries = append(report.MissingCanaries, c.Key)
			}
		}
	}
	out := json.NewEncoder(os.Stdout)
	out.SetIndent("", "  ")
	_ = out.Encode(report)
}

// decode judges JSON lines {"key": "...", "value": "..."} from stdin: the same decisions, without
// etcd, for differential tests against our own decoders.
func decode(args []string) {
	fs := flag.NewFlagSet("decode", flag.ExitOnError)
	cluster := fs.String("cluster-name", "", "the remote cluster")
	clusterID := fs.Uint("cluster-id", 0, "the remote cluster's id (from its cluster config)")
	maxConnected := fs.Uint("max-connected-clusters", 255, "255 or 511")
	_ = fs.Parse(args)
	if *cluster == "" {
		fail("decode needs --cluster-name")
	}
	initClusterIDMax(*maxConnected)
	j := &judge{cluster: *cluster, clusterID: uint32(*clusterID)}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<24)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var entry struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		}
		if err := json.Unmarshal(in.Bytes(), &entry); err != nil {
			fail("stdin line %q: %v", in.Text(), err)
		}
		_ = out.Encode(j.evaluate(entry.Key, []byte(entry.Value)))
	}
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: cilium-interop-checker check|decode [flags]")
	}
	switch os.Args[1] {
	case "check":
		check(os.Args[2:])
	case "decode":
		decode(os.Args[2:])
	case "version":
		fmt.Println(version.Version)
	default:
		fail("unknown command %q", os.Args[1])
	}
}
