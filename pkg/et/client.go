package et

import (
	"bytes"
	"context"
	"crypto/md5" //nolint:gosec // ET publishes md5; it is an integrity and change marker here.
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tqflow/tqflow/pkg/httpx"
)

// smallFileMax caps what is read of a .md5 or version.txt file.
const smallFileMax = 4 << 10

// State is what the fetcher remembers of the last artefact it accepted, to
// tell next time whether it changed. It is JSON-serialisable (the fetcher
// keeps it in NATS KV). The zero State means "never downloaded".
type State struct {
	// MD5 is the artefact's md5 in lower-case hex: the published one where
	// ET publishes a .md5, else the one computed while downloading.
	MD5 string `json:"md5,omitempty"`
	// Version is the trimmed content of the flavour's version.txt, where
	// it was read (only when there is no .md5).
	Version string `json:"version,omitempty"`
	// ETag and LastModified are the artefact's validators, sent back in a
	// conditional GET.
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

// Method says how [Client.Check] decided.
type Method string

// The change-detection methods, in the order Check tries them.
const (
	// MethodMD5 compared the published .md5 with State.MD5.
	MethodMD5 Method = "md5"
	// MethodVersion compared version.txt with State.Version.
	MethodVersion Method = "version"
	// MethodConditional made a conditional GET with State's validators.
	MethodConditional Method = "conditional"
	// MethodNone had nothing to compare (no .md5, no version.txt, no
	// validators) and reports a change without asking.
	MethodNone Method = "none"
)

// Update is the result of [Client.Check].
type Update struct {
	// Source is the source checked.
	Source Source `json:"source"`
	// Changed is true when the artefact differs from the one State
	// describes, or when that cannot be told.
	Changed bool `json:"changed"`
	// Method says how it was decided.
	Method Method `json:"method"`
	// Remote is what the check saw of the published artefact. Store the
	// State of [Artefact] after a successful download, not this.
	Remote State `json:"remote"`
}

// Artefact describes a completed, verified download.
type Artefact struct {
	// Source is the source downloaded.
	Source Source `json:"source"`
	// URL is the artefact's URL with the oinkcode replaced by "<oinkcode>"
	// and any password removed.
	URL string `json:"url"`
	// Size is the number of bytes written.
	Size int64 `json:"size"`
	// MD5 is the md5 of those bytes, lower-case hex.
	MD5 string `json:"md5"`
	// Verified is true when ET published a .md5 and it matched.
	Verified bool `json:"verified"`
	// State is what to store once the artefact has been used.
	State State `json:"state"`
}

// Client downloads ET artefacts. It is safe for concurrent use.
type Client struct {
	cfg     Config
	hc      *http.Client
	open    *url.URL
	pro     *url.URL
	block   *url.URL
	sources []Source
	lists   []Source
	scrub   scrubber
}

// New returns a client for cfg, after applying defaults and validating it.
func New(cfg Config) (*Client, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("validate et config: %w", err)
	}
	hc, err := httpx.NewClient(httpx.TLSConfig{Insecure: cfg.Insecure, CAFile: cfg.CAFile}, cfg.Timeout, cfg.WrapTransport)
	if err != nil {
		return nil, fmt.Errorf("build et http client: %w", err)
	}
	c := &Client{cfg: cfg, hc: hc}
	// Validate has parsed all three already.
	c.open, _ = parseBase(cfg.OpenURL)
	c.pro, _ = parseBase(cfg.ProURL)
	c.block, _ = parseBase(cfg.BlockURL)
	s := cfg.Scrub.With(cfg.Oinkcode.Reveal(), redactedCode)
	for _, u := range []*url.URL{c.open, c.pro, c.block} {
		if p, ok := u.User.Password(); ok && p != "" {
			s = s.WithBasic(u.User.Username(), p)
		}
	}
	c.scrub = scrubber{s: s}
	for _, name := range cfg.Sources {
		if strings.TrimSpace(name) == SourceNone {
			continue
		}
		s, _ := ParseSource(name) // Validated.
		if s != SourceBlock {
			c.sources = append(c.sources, s)
			continue
		}
		for _, f := range DefaultBlockFiles(cfg.Engine()) {
			c.sources = append(c.sources, BlockFile(f))
		}
	}
	slices.Sort(c.sources)
	c.sources = slices.Compact(c.sources)
	for _, name := range cfg.BlockLists {
		s, _ := ParseList(name) // Validated.
		c.lists = append(c.lists, s)
	}
	slices.Sort(c.lists)
	c.lists = slices.Compact(c.lists)
	return c, nil
}

// Sources returns the configured sources, "block" expanded into its files,
// sorted and without duplicates.
func (c *Client) Sources() []Source { return slices.Clone(c.sources) }

// Lists returns the configured IP lists (ET_BLOCK_LISTS) as "list:" sources,
// sorted and without duplicates. [Client.Check] and [Client.Download] take
// them like any source: change detection is a conditional GET, as for the
// block rules.
func (c *Client) Lists() []Source { return slices.Clone(c.lists) }

// flavorShown names the flavour asked for, and the configured one when it
// differs: "snort-2.9.7 (ET_FLAVOR snort-2.9.7.0)".
func (c *Client) flavorShown() string {
	req := RequestFlavor(c.cfg.Flavor)
	if req == c.cfg.Flavor {
		return req
	}
	return req + " (ET_FLAVOR " + c.cfg.Flavor + ")"
}

// Flavor returns the configured flavour.
func (c *Client) Flavor() string { return c.cfg.Flavor }

// String describes the client without its oinkcode. It has a value
// receiver so that a dereferenced Client prints safely too.
func (c Client) String() string {
	return fmt.Sprintf("et.Client{flavor: %s, sources: %v}", c.cfg.Flavor, c.sources)
}

// Format makes every fmt verb print [Client.String], so that no verb can
// reach the oinkcode through reflection.
func (c Client) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// target is where one source lives.
type target struct {
	src  Source
	name string // for messages: "open/suricata-5.0", "block/emerging-drop.rules"
	// dir and dirShown end in "/"; shown has the oinkcode replaced.
	dir, dirShown string
	file          string
	tarball       bool // a ruleset tarball, with .md5 and version.txt beside it
	list          bool // an IP list
}

func (t target) url(file string) (addr, shown string) { return t.dir + file, t.dirShown + file }

func (c *Client) target(src Source) (target, error) {
	flavor := RequestFlavor(c.cfg.Flavor)
	switch src {
	case SourceOpen, SourceOpenNoGPL:
		p := "/" + string(src) + "/" + flavor + "/"
		return target{
			src: src, name: string(src) + "/" + flavor, file: "emerging.rules.tar.gz", tarball: true,
			dir: c.open.String() + p, dirShown: c.open.Redacted() + p,
		}, nil
	case SourcePro:
		code := c.cfg.Oinkcode.Reveal()
		if code == "" {
			return target{}, permanent(fmt.Errorf("%w: no oinkcode configured for pro", ErrInvalidSource))
		}
		return target{
			src: src, name: "pro/" + flavor, file: "etpro.rules.tar.gz", tarball: true,
			dir:      c.pro.String() + "/" + code + "/" + flavor + "/",
			dirShown: c.pro.Redacted() + "/" + redactedCode + "/" + flavor + "/",
		}, nil
	}
	if p, ok := src.List(); ok {
		dir, file, _ := strings.Cut(p, "/")
		if _, err := ParseList(p); err != nil {
			return target{}, permanent(err)
		}
		return target{
			src: src, name: "list/" + p, file: file, list: true,
			dir: c.block.String() + "/" + dir + "/", dirShown: c.block.Redacted() + "/" + dir + "/",
		}, nil
	}
	file, ok := src.File()
	if !ok || !validSegment(file) {
		return target{}, permanent(fmt.Errorf("%w: %q: want open, open-nogpl, pro or block:<file>", ErrInvalidSource, string(src)))
	}
	return target{
		src: src, name: "block/" + file, file: file,
		dir: c.block.String() + "/blockrules/", dirShown: c.block.Redacted() + "/blockrules/",
	}, nil
}

// Check tells whether src changed since the artefact prev describes,
// downloading nothing. For a ruleset it fetches the published .md5 (one
// small request when there is one), else version.txt, else makes a
// conditional GET of the tarball; for a block-rules file it makes a
// conditional GET, whose body it does not read. With nothing to compare it
// reports a change.
func (c *Client) Check(ctx context.Context, src Source, prev State) (Update, error) {
	t, err := c.target(src)
	if err != nil {
		return Update{}, fmt.Errorf("et: check %s: %w", src, err)
	}
	op := "et: check " + t.name
	if t.tarball {
		sum, found, err := c.fetchMD5(ctx, t)
		if err != nil {
			return Update{}, fmt.Errorf("%s: %w", op, err)
		}
		if found {
			return Update{Source: src, Changed: sum != strings.ToLower(prev.MD5), Method: MethodMD5, Remote: State{MD5: sum}}, nil
		}
		ver, found, err := c.fetchVersion(ctx, t)
		if err != nil {
			return Update{}, fmt.Errorf("%s: %w", op, err)
		}
		if found {
			return Update{Source: src, Changed: ver != prev.Version, Method: MethodVersion, Remote: State{Version: ver}}, nil
		}
	}
	if prev.ETag == "" && prev.LastModified == "" {
		return Update{Source: src, Changed: true, Method: MethodNone}, nil
	}
	hdr := http.Header{}
	if prev.ETag != "" {
		hdr.Set("If-None-Match", prev.ETag)
	}
	if prev.LastModified != "" {
		hdr.Set("If-Modified-Since", prev.LastModified)
	}
	addr, shown := t.url(t.file)
	resp, err := c.get(ctx, t, addr, shown, hdr, true)
	if err != nil {
		return Update{}, fmt.Errorf("%s: %w", op, err)
	}
	_ = resp.Body.Close() // Unread: a change is all Check needs to know.
	remote := validators(resp)
	if resp.StatusCode == http.StatusNotModified {
		if remote.ETag == "" {
			remote.ETag = prev.ETag
		}
		if remote.LastModified == "" {
			remote.LastModified = prev.LastModified
		}
		return Update{Source: src, Method: MethodConditional, Remote: remote}, nil
	}
	return Update{Source: src, Changed: true, Method: MethodConditional, Remote: remote}, nil
}

// Download streams src into w. For a ruleset it first reads the published
// .md5 (or, without one, version.txt), then hashes the tarball while
// copying it and compares. It fails when the body is cut short, exceeds
// Config.MaxSize or does not match the published md5; on any error the
// bytes already written to w must be discarded.
func (c *Client) Download(ctx context.Context, src Source, w io.Writer) (Artefact, error) {
	t, err := c.target(src)
	if err != nil {
		return Artefact{}, fmt.Errorf("et: download %s: %w", src, err)
	}
	op := "et: download " + t.name
	var published, version string
	if t.tarball {
		var found bool
		published, found, err = c.fetchMD5(ctx, t)
		if err != nil {
			return Artefact{}, fmt.Errorf("%s: %w", op, err)
		}
		if !found {
			version, _, err = c.fetchVersion(ctx, t)
			if err != nil {
				return Artefact{}, fmt.Errorf("%s: %w", op, err)
			}
		}
	}
	addr, shown := t.url(t.file)
	resp, err := c.get(ctx, t, addr, shown, nil, false)
	if err != nil {
		return Artefact{}, fmt.Errorf("%s: %w", op, err)
	}
	defer func() { _ = resp.Body.Close() }()
	limit := c.cfg.MaxSize
	if resp.ContentLength > limit {
		return Artefact{}, fmt.Errorf("%s: GET %s: %w", op, shown, permanent(fmt.Errorf("%w: %d bytes announced, the limit is %d", ErrTooLarge, resp.ContentLength, limit)))
	}
	h := md5.New() //nolint:gosec // See the import.
	body := &errReader{r: io.LimitReader(resp.Body, limit+1)}
	n, err := io.Copy(io.MultiWriter(w, h), body)
	switch {
	case body.err != nil && !errors.Is(body.err, io.EOF):
		err = body.err
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w after %d bytes: %w", ErrTruncated, n, err)
		}
		return Artefact{}, fmt.Errorf("%s: %w", op, &httpx.TransportError{Op: "GET " + shown, Err: c.scrub.scrub(err)})
	case err != nil:
		return Artefact{}, fmt.Errorf("%s: write %s: %w", op, t.file, err)
	case n > limit:
		return Artefact{}, fmt.Errorf("%s: GET %s: %w", op, shown, permanent(fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)))
	case resp.ContentLength >= 0 && n != resp.ContentLength:
		err := fmt.Errorf("%w: %d of %d bytes", ErrTruncated, n, resp.ContentLength)
		return Artefact{}, fmt.Errorf("%s: %w", op, &httpx.TransportError{Op: "GET " + shown, Err: err})
	}
	got := hex.EncodeToString(h.Sum(nil))
	if published != "" && got != published {
		// ET may have published a new ruleset during the download: read the
		// .md5 again before calling the bytes corrupt.
		again, found, err := c.fetchMD5(ctx, t)
		switch {
		case err == nil && found && again == got:
			published = again
		case err == nil && found && again != published:
			return Artefact{}, fmt.Errorf("%s: %w", op, transient(fmt.Errorf("ruleset republished during the download (md5 %s, then %s)", published, again)))
		default:
			return Artefact{}, fmt.Errorf("%s: GET %s: %w", op, shown, &MismatchError{Published: published, Downloaded: got})
		}
	}
	st := validators(resp)
	st.MD5, st.Version = got, version
	return Artefact{Source: src, URL: shown, Size: n, MD5: got, Verified: published != "", State: st}, nil
}

// fetchMD5 reads the .md5 beside t's tarball. found is false when the
// server has none (404).
func (c *Client) fetchMD5(ctx context.Context, t target) (sum string, found bool, err error) {
	addr, shown := t.url(t.file + ".md5")
	body, found, err := c.getSmall(ctx, t, addr, shown)
	if err != nil || !found {
		return "", false, err
	}
	sum, err = ParseMD5(body)
	if err != nil {
		return "", false, &httpx.DecodeError{Op: "GET " + shown, Err: err}
	}
	return sum, true, nil
}

// fetchVersion reads version.txt beside t's tarball; found is false when
// the server has none (404).
func (c *Client) fetchVersion(ctx context.Context, t target) (ver string, found bool, err error) {
	addr, shown := t.url("version.txt")
	body, found, err := c.getSmall(ctx, t, addr, shown)
	if err != nil || !found {
		return "", false, err
	}
	return string(bytes.TrimSpace(body)), true, nil
}

// getSmall GETs a small companion file; a 404 is (nil, false, nil).
func (c *Client) getSmall(ctx context.Context, t target, addr, shown string) ([]byte, bool, error) {
	resp, err := c.get(ctx, t, addr, shown, nil, false)
	if errors.Is(err, ErrUnknownFlavour) || errors.Is(err, ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, smallFileMax))
	if err != nil {
		return nil, false, &httpx.TransportError{Op: "GET " + shown, Err: c.scrub.scrub(err)}
	}
	return body, true, nil
}

// get sends a GET and classifies any answer but 200 (and 304 when
// conditional) as an error. The caller closes the body.
func (c *Client) get(ctx context.Context, t target, addr, shown string, hdr http.Header, conditional bool) (*http.Response, error) {
	op := "GET " + shown
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, addr, nil)
	if err != nil {
		return nil, permanent(fmt.Errorf("build request %s: %w", op, c.scrub.scrub(err)))
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	// A .tar.gz served with Content-Encoding: gzip would otherwise be
	// decompressed by the transport and no longer match its md5.
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("User-Agent", "tqflow-et")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, &httpx.TransportError{Op: op, Err: c.scrub.scrub(err)}
	}
	if resp.StatusCode == http.StatusOK || conditional && resp.StatusCode == http.StatusNotModified {
		return resp, nil
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, smallFileMax))
	_ = resp.Body.Close()
	se := &httpx.StatusError{
		Op:         op,
		StatusCode: resp.StatusCode,
		Retry:      httpx.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
	switch {
	case t.src == SourcePro && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden):
		return nil, fmt.Errorf("%w (HTTP %d): %w", ErrOinkcodeRejected, resp.StatusCode, se)
	case resp.StatusCode == http.StatusNotFound && t.tarball:
		return nil, fmt.Errorf("%w: ET has no %s for flavour %s (HTTP 404 for %s); %s: %w",
			ErrUnknownFlavour, t.file, c.flavorShown(), shown, flavorAdvice(c.cfg.Flavor), se)
	case resp.StatusCode == http.StatusNotFound && t.list:
		return nil, fmt.Errorf("IP list %s %w (HTTP 404 for %s): %w", t.name, ErrNotFound, shown, se)
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("block-rules file %s %w (HTTP 404): %w", t.file, ErrNotFound, se)
	}
	return nil, se
}

// validators returns the ETag and Last-Modified of resp.
func validators(resp *http.Response) State {
	return State{ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}
}

// ParseMD5 reads the content of a .md5 file: 32 hex digits, optionally
// followed by a file name ("<md5>  <file>", as md5sum writes it) or in the
// BSD form "MD5 (<file>) = <md5>", with any surrounding white space. It
// returns the md5 in lower case.
func ParseMD5(b []byte) (string, error) {
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return "", fmt.Errorf("%w: the file is empty", ErrBadMD5File)
	}
	sum := fields[0]
	if sum == "MD5" || sum == "md5" {
		sum = fields[len(fields)-1]
	}
	if len(sum) != 2*md5.Size {
		return "", fmt.Errorf("%w: want 32 hex digits, got %d characters", ErrBadMD5File, min(len(sum), 999))
	}
	if _, err := hex.DecodeString(sum); err != nil {
		return "", fmt.Errorf("%w: want 32 hex digits", ErrBadMD5File)
	}
	return strings.ToLower(sum), nil
}

// errReader remembers the error of the reader it wraps, so that a read
// failure can be told from a write failure after io.Copy.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.err = err
	}
	return n, err
}
