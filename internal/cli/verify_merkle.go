package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/crunchnode/crunch-node/jobs"
)

// runVerifyMerkle checks a snapshot's proof as served by a node: the snapshot's content
// must hash to the committed leaf, the path must climb to the cycle root, the chaining
// step must hold, and the checkpoint path must reach merkle_root, which must equal the
// root the node lists for that checkpoint.
func runVerifyMerkle(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "verify-merkle")
	base := fs.String("url", "", "report API base URL (default http://127.0.0.1:$REPORT_API_PORT)")
	apiKey := fs.String("api-key", "", "API key (default API_KEY)")
	snapshotID := fs.String("snapshot-id", "", "the snapshot to verify (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *snapshotID == "" {
		return fmt.Errorf("%w: --snapshot-id is required", ErrUsage)
	}
	*base = cmp.Or(*base, "http://127.0.0.1:"+cmp.Or(env.getenv("REPORT_API_PORT"), "8000"))
	*apiKey = cmp.Or(*apiKey, env.getenv("API_KEY"))
	client := &http.Client{Timeout: 10 * time.Second}

	var proof jobs.SnapshotProof
	if err := fetchJSON(ctx, client, *base+"/reports/merkle/proof?snapshot_id="+url.QueryEscape(*snapshotID), *apiKey, &proof); err != nil {
		return err
	}
	if err := jobs.VerifyProof(&proof); err != nil {
		return fmt.Errorf("proof of %s does not verify: %w", *snapshotID, err)
	}
	if proof.CheckpointID == "" {
		fmt.Fprintf(env.stdout, "OK: %s is committed by cycle %s (root %s); no checkpoint covers that cycle yet.\n",
			*snapshotID, proof.CycleID, proof.CycleRoot)
		return nil
	}
	var checkpoints []struct {
		ID         string  `json:"id"`
		MerkleRoot *string `json:"merkle_root"`
	}
	if err := fetchJSON(ctx, client, *base+"/reports/checkpoints?limit=100", *apiKey, &checkpoints); err != nil {
		return err
	}
	for _, c := range checkpoints {
		if c.ID == proof.CheckpointID {
			if c.MerkleRoot == nil || *c.MerkleRoot != proof.MerkleRoot {
				return fmt.Errorf("checkpoint %s lists merkle_root %v, the proof reaches %s", c.ID, c.MerkleRoot, proof.MerkleRoot)
			}
			fmt.Fprintf(env.stdout, "OK: %s is committed by checkpoint %s (merkle_root %s) through cycle %s.\n",
				*snapshotID, c.ID, proof.MerkleRoot, proof.CycleID)
			return nil
		}
	}
	return fmt.Errorf("the proof names checkpoint %s, which the node does not list among its newest 100", proof.CheckpointID)
}

func fetchJSON(ctx context.Context, client *http.Client, u, apiKey string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if apiKey != "" {
		req.Header.Set("X-API-Key", apiKey)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var problem struct {
			Detail string `json:"detail"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&problem)
		return fmt.Errorf("GET %s: %s %s", u, resp.Status, problem.Detail)
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		return fmt.Errorf("decoding %s: %w", u, err)
	}
	return nil
}
