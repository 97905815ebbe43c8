// Package bundle builds and serves the OPA bundle of the policy: the
// shipped Rego files plus data.authz at one policy revision, as a
// deterministic tar.gz (the same revision gives the same bytes on every
// replica and after every restart). Bundles are built lazily, one build at
// a time, and cached per revision; a long-polling client (OPA) waits for
// the next revision without touching the store.
package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/nmp-project/nmp/internal/authz"
)

// Bundle is one built bundle.
type Bundle struct {
	// Revision is the policy revision the bundle holds.
	Revision int64
	// Bytes is the tar.gz archive.
	Bytes []byte
	// ETag is the quoted entity tag: the first 32 hex digits of the
	// archive's SHA-256.
	ETag string
}

// manifest is the bundle's .manifest file.
type manifest struct {
	Revision    string   `json:"revision"`
	Roots       []string `json:"roots"`
	RegoVersion int      `json:"rego_version"`
}

// file is one archive entry.
type file struct {
	name string
	data []byte
}

// Build renders the bundle of data.authz at revision with the shipped
// policy files: .manifest, data.json ({"authz": data}) and
// policy/<name>.rego, sorted by name, each a regular file with mode 0644,
// owner 0:0 and modification time 0, in a gzip stream without name or
// time. The same inputs always give the same bytes.
func Build(revision int64, data map[string]any) (*Bundle, error) {
	man, err := json.Marshal(manifest{Revision: strconv.FormatInt(revision, 10), Roots: []string{"authz"}, RegoVersion: 1})
	if err != nil {
		return nil, fmt.Errorf("bundle manifest: %w", err)
	}
	// encoding/json writes map keys sorted, so equal data gives equal bytes.
	dataJSON, err := json.Marshal(map[string]any{"authz": data})
	if err != nil {
		return nil, fmt.Errorf("bundle data: %w", err)
	}
	files := []file{{".manifest", man}, {"data.json", dataJSON}}
	for _, p := range authz.PolicyFiles() {
		files = append(files, file{"policy/" + p.Name, p.Data})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })

	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	// The zero gzip.Header: no name, no comment, modification time 0.
	tw := tar.NewWriter(gz)
	for _, f := range files {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: int64(len(f.data)),
			ModTime: time.Unix(0, 0), Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("bundle entry %s: %w", f.name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("bundle entry %s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(buf.Bytes())
	return &Bundle{Revision: revision, Bytes: buf.Bytes(), ETag: `"` + hex.EncodeToString(sum[:])[:32] + `"`}, nil
}
