package testkit

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
)

// maxBody bounds the body Get and Scrape read: a /metrics page of the
// whole pipeline is well under a megabyte.
const maxBody = 16 << 20

// Get sends a GET to url, ended with the test, and returns the status
// code and the body (its first 16 MiB). It fails the test if there is no
// response.
func Get(t testing.TB, url string) (int, string) {
	t.Helper()
	code, body, err := get(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	return code, body
}

// Scrape returns the body of url, a /metrics page as Prometheus would
// scrape it; an answer other than 200 OK is an error. Unlike Get it does
// not fail the test, for loops that scrape until a series shows and
// report the last error only if it never does.
func Scrape(ctx context.Context, url string) (string, error) {
	code, body, err := get(ctx, url)
	if err != nil {
		return "", err
	}
	if code != http.StatusOK {
		return "", fmt.Errorf("scrape %s: status %d", url, code)
	}
	return body, nil
}

func get(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", fmt.Errorf("get %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("get %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, "", fmt.Errorf("get %s: read body: %w", url, err)
	}
	return resp.StatusCode, string(body), nil
}
