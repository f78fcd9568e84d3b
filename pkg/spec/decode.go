package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Decoding is strict because a typo in a manifest must not silently become a
// default: `replica: 5` would otherwise create three instances. Input is
// YAML or JSON; YAML is converted to JSON, read into a generic tree and
// checked against the Go types field by field, so one answer lists every
// problem with its path. Only then is the tree decoded into the struct.
//
// Decoding neither applies defaults nor validates values; status and
// server-owned metadata are accepted so that `get -o yaml` output can be
// edited and applied again.

// errNoDocument is returned for input without any document, such as an
// empty file or one holding only comments.
var errNoDocument = errors.New("no MySQLCluster document found")

// maxNesting bounds how deep input may nest. A MySQLCluster is five levels
// deep; the bound keeps hostile input ("[[[[...") from exhausting the stack.
const maxNesting = 100

// Decode reads exactly one MySQLCluster from YAML or JSON. Field problems
// come back as an ErrorList (use errors.As), other problems as plain errors.
func Decode(data []byte) (*MySQLCluster, error) {
	docs, err := splitDocuments(data)
	if err != nil {
		return nil, err
	}
	switch len(docs) {
	case 0:
		return nil, errNoDocument
	case 1:
		return docs[0].decode()
	default:
		return nil, fmt.Errorf("found %d documents (the second starts at line %d); expected exactly one MySQLCluster",
			len(docs), docs[1].line)
	}
}

// DecodeAll reads every MySQLCluster of a multi-document YAML stream
// (documents separated by `---` lines) or of a stream of JSON objects.
//
// Documents that are empty, hold only comments or are null are skipped and
// not counted: "document 2" is the second document that has content, which
// is what a reader of the file counts. Problems are reported for every
// document, each wrapped in a *DocumentError; nothing is returned unless
// all documents decode.
func DecodeAll(data []byte) ([]*MySQLCluster, error) {
	return eachDocument(data, document.decode)
}

// Parse is what a client does with a manifest before sending it: DecodeAll,
// then SetDefaults and Validate on each document. Every problem of every
// document is reported, prefixed as in DecodeAll.
func Parse(data []byte) ([]*MySQLCluster, error) {
	return eachDocument(data, document.parse)
}

// eachDocument applies read to every document and collects the objects, or
// every document's errors.
func eachDocument(data []byte, read func(document) (*MySQLCluster, error)) ([]*MySQLCluster, error) {
	docs, err := splitDocuments(data)
	if err != nil {
		return nil, err
	}
	if len(docs) == 0 {
		return nil, errNoDocument
	}
	var objs []*MySQLCluster
	var errs []error
	for _, d := range docs {
		obj, err := read(d)
		if err != nil {
			errs = append(errs, d.wrap(err))
			continue
		}
		objs = append(objs, obj)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return objs, nil
}

// DocumentError says which document of a stream a problem belongs to.
type DocumentError struct {
	// Index counts documents with content, from 1.
	Index int
	// Line is where the document starts in the input, from 1.
	Line int
	// Err is the problem: an ErrorList for field problems.
	Err error
}

// Error prefixes every line of the underlying error with "document N: ", so
// that each field error stands alone when the list is long.
func (e *DocumentError) Error() string {
	prefix := "document " + strconv.Itoa(e.Index) + ": "
	lines := strings.Split(e.Err.Error(), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find the ErrorList.
func (e *DocumentError) Unwrap() error { return e.Err }

// document is one piece of the input, already parsed into a generic tree
// (maps, slices, strings, json.Number, bools, nil) or carrying the syntax
// error that stopped it.
type document struct {
	index int
	line  int
	tree  any
	err   error
}

func (d document) wrap(err error) error {
	return &DocumentError{Index: d.index, Line: d.line, Err: err}
}

func (d document) decode() (*MySQLCluster, error) {
	if d.err != nil {
		return nil, d.err
	}
	return decodeTree(d.tree)
}

// parse decodes, defaults and validates the document, reporting the
// decoding errors and the validation errors of the fields that decoded in
// one list. A field that failed to decode is not reported again by
// validation (as missing, say).
func (d document) parse() (*MySQLCluster, error) {
	if d.err != nil {
		return nil, d.err
	}
	if _, ok := d.tree.(map[string]any); !ok {
		return decodeTree(d.tree)
	}
	c, errs := decodeChecked(d.tree)
	if c == nil {
		return nil, errs
	}
	SetDefaults(c)
	for _, e := range Validate(c) {
		if !coveredBy(e.Field, errs) {
			errs = append(errs, e)
		}
	}
	return c, errs.Err()
}

// coveredBy reports whether field, or a field it lies in, already has an error.
func coveredBy(field string, errs ErrorList) bool {
	for _, e := range errs {
		if field == e.Field || strings.HasPrefix(field, e.Field+".") || strings.HasPrefix(field, e.Field+"[") {
			return true
		}
	}
	return false
}

// ParseOne is Parse for exactly one document: what the API server does with
// a request body. The object is returned defaulted and valid, or not at all.
func ParseOne(data []byte) (*MySQLCluster, error) {
	docs, err := splitDocuments(data)
	if err != nil {
		return nil, err
	}
	switch len(docs) {
	case 0:
		return nil, errNoDocument
	case 1:
		c, err := docs[0].parse()
		if err != nil {
			return nil, err
		}
		return c, nil
	default:
		return nil, fmt.Errorf("found %d documents (the second starts at line %d); expected exactly one MySQLCluster",
			len(docs), docs[1].line)
	}
}

// DecodeObject reads a request body that is one small object rather than
// a cluster (a switchover request, say) as strictly as Decode reads a
// cluster: duplicate keys, a second document, nesting deeper than 100
// levels, .inf and .nan are refused. The object comes back as a generic
// tree (maps, slices, strings, json.Number, bools, nil) for the caller to
// check field by field. An empty body, one of comments only, or null gives
// nil and no error.
func DecodeObject(data []byte) (map[string]any, error) {
	docs, err := splitDocuments(data)
	if err != nil {
		return nil, err
	}
	switch len(docs) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, fmt.Errorf("found %d documents (the second starts at line %d); expected exactly one object",
			len(docs), docs[1].line)
	}
	if docs[0].err != nil {
		return nil, docs[0].err
	}
	obj, ok := docs[0].tree.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("expected an object, found %s", kindOf(docs[0].tree))
	}
	return obj, nil
}

var utf8BOM = []byte("\xef\xbb\xbf")

// splitDocuments cuts the input into documents. Input whose first character
// is '{' is JSON, as kubectl decides; anything else is YAML.
func splitDocuments(data []byte) ([]document, error) {
	data = bytes.TrimPrefix(data, utf8BOM)
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '{' {
		return splitJSON(data), nil
	}
	return splitYAML(data)
}

// splitJSON reads a stream of JSON values. A syntax error ends the stream:
// there is no reliable place to resume after it.
func splitJSON(data []byte) []document {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var docs []document
	for {
		start := lineAt(data, skipSpace(data, dec.InputOffset()))
		tree, err := readJSONValue(dec, 0)
		if err == io.EOF {
			return docs
		}
		if err != nil {
			err = fmt.Errorf("invalid JSON: line %d: %s", lineAt(data, dec.InputOffset()), jsonErrorText(err))
			return append(docs, document{index: len(docs) + 1, line: start, err: err})
		}
		if tree != nil {
			docs = append(docs, document{index: len(docs) + 1, line: start, tree: tree})
		}
	}
}

func skipSpace(data []byte, off int64) int64 {
	for off < int64(len(data)) && strings.IndexByte(" \t\r\n", data[off]) >= 0 {
		off++
	}
	return off
}

// lineAt returns the 1-based line number of a byte offset.
func lineAt(data []byte, off int64) int {
	off = min(max(off, 0), int64(len(data)))
	return bytes.Count(data[:off], []byte("\n")) + 1
}

func jsonErrorText(err error) string {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of input"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// readJSONValue builds a generic tree from the decoder's tokens. Unlike
// json.Unmarshal it refuses duplicate keys, which would otherwise let the
// last of two conflicting values win unnoticed.
func readJSONValue(dec *json.Decoder, depth int) (any, error) {
	if depth > maxNesting {
		return nil, fmt.Errorf("nested more than %d levels deep", maxNesting)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		return readJSONObject(dec, depth+1)
	case json.Delim('['):
		return readJSONArray(dec, depth+1)
	}
	return tok, nil // string, json.Number, bool or nil; the decoder rejects stray '}' and ']'
}

func readJSONObject(dec *json.Decoder, depth int) (any, error) {
	obj := map[string]any{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, unexpectedEOF(err)
		}
		k, _ := tok.(string) // the decoder only yields strings as keys
		if _, dup := obj[k]; dup {
			return nil, fmt.Errorf("key %q appears twice in the same object", k)
		}
		if obj[k], err = readJSONValue(dec, depth); err != nil {
			return nil, unexpectedEOF(err)
		}
	}
	_, err := dec.Token() // the closing '}'
	return obj, unexpectedEOF(err)
}

func readJSONArray(dec *json.Decoder, depth int) (any, error) {
	list := []any{}
	for dec.More() {
		v, err := readJSONValue(dec, depth)
		if err != nil {
			return nil, unexpectedEOF(err)
		}
		list = append(list, v)
	}
	_, err := dec.Token() // the closing ']'
	return list, unexpectedEOF(err)
}

// unexpectedEOF turns io.EOF inside a value into an error, so that only a
// clean end between values ends the stream.
func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// splitYAML cuts a YAML stream at separator lines and parses each piece.
// Like kubectl's YAML reader it splits on lines, not with a YAML parser:
// `---` at the start of a line, followed by nothing but spaces or a comment.
func splitYAML(data []byte) ([]document, error) {
	chunks, err := yamlChunks(data)
	if err != nil {
		return nil, err
	}
	var docs []document
	for _, c := range chunks {
		if onlyComments(c.text) {
			continue
		}
		tree, err := yamlToTree(c.text, c.line)
		if err == nil && tree == nil {
			continue // an explicit null (`~`) is as empty as a blank document
		}
		docs = append(docs, document{index: len(docs) + 1, line: c.line, tree: tree, err: err})
	}
	return docs, nil
}

type chunk struct {
	text []byte
	line int // line of the chunk's first line in the input
}

func yamlChunks(data []byte) ([]chunk, error) {
	var chunks []chunk
	current := chunk{line: 1}
	for lineNo, rest := 1, data; len(rest) > 0; lineNo++ {
		end := bytes.IndexByte(rest, '\n') + 1
		if end == 0 {
			end = len(rest)
		}
		line := rest[:end]
		rest = rest[end:]
		isSep, err := isSeparator(line)
		if err != nil {
			return nil, fmt.Errorf("invalid YAML: line %d: %w", lineNo, err)
		}
		if isSep {
			chunks = append(chunks, current)
			current = chunk{line: lineNo + 1}
			continue
		}
		current.text = append(current.text, line...)
	}
	return append(chunks, current), nil
}

// isSeparator recognises a document separator line. Text after `---`
// other than a comment (`--- {a: 1}`) is refused rather than misread: a
// line-based split cannot tell where such a document begins.
func isSeparator(line []byte) (bool, error) {
	if !bytes.HasPrefix(line, []byte("---")) {
		return false, nil
	}
	after := bytes.TrimSpace(line[3:])
	if len(after) == 0 || after[0] == '#' {
		return true, nil
	}
	if line[3] != ' ' && line[3] != '\t' {
		return false, nil // "----" or "---x": content, not a separator
	}
	return false, errors.New(`text after the document separator "---" is not supported; start the document on the next line`)
}

func onlyComments(text []byte) bool {
	for _, line := range bytes.Split(text, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) > 0 && line[0] != '#' {
			return false
		}
	}
	return true
}

// yamlToTree converts one YAML document. YAMLToJSONStrict refuses duplicate
// keys; reading its JSON back with UseNumber keeps integers exact.
func yamlToTree(text []byte, firstLine int) (any, error) {
	j, err := yaml.YAMLToJSONStrict(text)
	if err != nil {
		return nil, yamlError(err, firstLine)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	tree, err := readJSONValue(dec, 0)
	if err != nil {
		return nil, fmt.Errorf("invalid YAML in the document starting at line %d: %s", firstLine, jsonErrorText(err))
	}
	return tree, nil
}

var yamlLineNumber = regexp.MustCompile(`\bline (\d+)`)

// yamlError rewrites a YAML parser error for the user: line numbers count
// from the start of the input rather than of the document, and the
// parser's jargon is replaced where it is obscure.
func yamlError(err error, firstLine int) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	parts := strings.Split(msg, "\n")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	msg = strings.Join(parts, "; ")
	msg = strings.ReplaceAll(msg, "already set in map", "appears twice in the same mapping")
	if strings.Contains(msg, "unsupported value") {
		msg = "the values .inf and .nan cannot be used (" + msg + ")"
	}
	if !yamlLineNumber.MatchString(msg) {
		return fmt.Errorf("invalid YAML in the document starting at line %d: %s", firstLine, msg)
	}
	msg = yamlLineNumber.ReplaceAllStringFunc(msg, func(m string) string {
		n, _ := strconv.Atoi(strings.TrimPrefix(m, "line "))
		return "line " + strconv.Itoa(n+firstLine-1)
	})
	return errors.New("invalid YAML: " + msg)
}

// decodeTree checks the tree against the Go types, then decodes it.
func decodeTree(tree any) (*MySQLCluster, error) {
	if _, ok := tree.(map[string]any); !ok {
		return nil, fmt.Errorf("expected a MySQLCluster object with apiVersion, kind, metadata and spec, found %s", kindOf(tree))
	}
	c, errs := decodeChecked(tree)
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

// decodeChecked decodes what is left of tree once every bad field is
// dropped, and returns the field errors beside it, so that validation can
// still report the problems of the fields that were fine.
func decodeChecked(tree any) (*MySQLCluster, ErrorList) {
	w := &walker{}
	clean, _ := w.walk("", tree, clusterType)
	c, err := decodeClean(clean)
	if err != nil {
		return nil, append(w.errs, &FieldError{Type: ErrorTypeInvalid, Detail: err.Error()})
	}
	return c, w.errs
}

func decodeClean(clean any) (*MySQLCluster, error) {
	raw, err := json.Marshal(clean)
	if err != nil {
		return nil, fmt.Errorf("internal error re-encoding a checked document: %w", err)
	}
	var c MySQLCluster
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("internal error decoding a checked document: %w", err)
	}
	return &c, nil
}
