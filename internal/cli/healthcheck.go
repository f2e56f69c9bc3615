package cli

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"
)

// runHealthcheck asks the local report API for /healthz; containers use it as their health
// check because the runtime image has no curl.
func runHealthcheck(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "healthcheck")
	url := fs.String("url", "", "report API base URL (default http://127.0.0.1:$REPORT_API_PORT)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *url == "" {
		port := cmp.Or(env.getenv("REPORT_API_PORT"), "8000")
		if _, err := strconv.Atoi(port); err != nil {
			return fmt.Errorf("REPORT_API_PORT: %q is not a port", port)
		}
		*url = "http://" + net.JoinHostPort("127.0.0.1", port)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("asking %s/healthz: %w", *url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s/healthz answered %s", *url, resp.Status)
	}
	fmt.Fprintln(env.stdout, "ok")
	return nil
}
