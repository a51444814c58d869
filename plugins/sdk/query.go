package sdk

import (
	"strings"
	"unsafe"

	"github.com/hookgate/hookgate/plugins/sdk/internal/hostcall"
	"github.com/hookgate/hookgate/plugins/sdk/jsonget"
	"github.com/tidwall/gjson"
)

// JSON lookups go to the host: json_get (ABI.md) walks the document once,
// natively, for every path of a call, and answers with records of where
// each value lies; the guest decodes the few records it asked for. In a
// Go guest compiled to wasm, walking JSON costs several nanoseconds per
// byte, which is what made JSON the bulk of a plugin's time. When the host
// cannot answer (the document is not valid JSON where it looked, or a path
// uses gjson syntax json_get does not take), gjson answers in the guest:
// the result is the same either way, only slower.

const recSize = int(unsafe.Sizeof(hostcall.Record{}))

// hostGet asks the host for the path list list in json, growing *recs when
// the answer does not fit. It returns the number of records, or false when
// the host could not answer.
func hostGet(json, list []byte, recs *[]hostcall.Record) (int, bool) {
	r := *recs
	n := hostcall.JSONGet(json, list, r)
	if n < 0 {
		return 0, false
	}
	if int(n) > len(r)*recSize {
		r = make([]hostcall.Record, grow(int(n))/recSize)
		*recs = r
		if n = hostcall.JSONGet(json, list, r); n < 0 || int(n) > len(r)*recSize {
			return 0, false
		}
	}
	return int(n) / recSize, true
}

// appendPath adds path to a path list: its length, little-endian, then it.
func appendPath(list []byte, path string) []byte {
	n := uint32(len(path))
	list = append(list, byte(n), byte(n>>8), byte(n>>16), byte(n>>24))
	return append(list, path...)
}

// decode returns the Result gjson gives for the value record r describes
// in json. ok is false when r is not an answer (an unsupported path, or a
// record that does not fit json).
func decode(json []byte, r *hostcall.Record) (res Result, ok bool) {
	if r.Type == jsonget.TypeAbsent {
		return Result{}, true
	}
	start, end := int(r.Start), int(r.Start)+int(r.Len)
	if r.Type < jsonget.TypeNull || r.Type > jsonget.TypeJSON || start < 0 || end > len(json) || start >= end {
		return Result{}, false
	}
	raw := str(json[start:end])
	res = Result{Type: gjson.Type(r.Type), Raw: raw, Index: start}
	switch res.Type {
	case gjson.String:
		switch {
		case r.Flags&jsonget.FlagEscaped != 0:
			res.Str = unescape(raw)
		case len(raw) >= 2:
			res.Str = raw[1 : len(raw)-1]
		}
	case gjson.Number:
		res.Num = r.Num
	}
	return res, true
}

// One path list and answer buffer for Get, GetBytes and GetMany: they
// return before anything else can use them.
var (
	getList []byte
	getRecs []hostcall.Record
)

// get is Get through the host; ok is false when it could not answer.
func get(json []byte, path string) (Result, bool) {
	if !hostable(json, path) {
		return Result{}, false
	}
	getList = appendPath(getList[:0], path)
	if n, ok := hostGet(json, getList, &getRecs); ok && n == 1 {
		return decode(json, &getRecs[0])
	}
	return Result{}, false
}

// Query is a fixed set of JSON paths read from one document with one host
// call: declare it once (a package variable), Run it per event, read the
// values by the index of their path.
//
//	var ticket = sdk.NewQuery(
//		"event_type",             // 0
//		"campaign.fields.#.code", // 1: the code of each question
//		"entry.fields.#",         // 2: each answer, with its key
//	)
//
//	ticket.Run(e.Body())
//	if ticket.Str(0) != "entry_submitted" { ... }
//	for j := range ticket.Len(1) {
//		code := ticket.StrAt(1, j)
//		...
//	}
//
// Paths are gjson paths, plus one extension: a component that is exactly
// '#' stands for each element of an array (or each member of an object),
// and the path's value is read in each: "campaign.fields.#.code" gives
// one value per element of campaign.fields, absent where an element has
// no code, so paths over the same array line up element by element. (In
// sdk.Get, gjson's "a.#.b" is one computed array instead.) At most one '#'
// per path takes this meaning; later ones are gjson's.
//
// Get and At return gjson Results; Raw, Str, RawAt and StrAt return just
// the JSON text or a string's content, which in a wasm guest costs a
// fraction of building a Result (80 bytes, copied at every step).
//
// # Notes
//
//   - Values point into the document, like Get's: valid while it is.
//   - A Query holds the answer of its last Run: one Query per use, not
//     shared by goroutines (a plugin instance runs one call at a time).
type Query struct {
	paths []string
	list  []byte // the path list, packed once
	hash  []int  // per path: byte offset of its '#' component, or -1
	recs  []hostcall.Record
	n     int // records of the last answer
	json  []byte

	// Per path, checked once in Run: where a '#' path's elements are.
	spans []span

	own   []answer // per path, when the guest answered it
	owned bool     // some path of the last Run is in own
}

// span locates the element records of a '#' path: element j is record
// first + j*step, for j < count (0 for other paths).
type span struct{ first, count, step int32 }

// answer is a path the guest answered with gjson.
type answer struct {
	set   bool
	val   Result
	elems []Result
	keys  []string
}

// NewQuery compiles paths into a Query.
func NewQuery(paths ...string) *Query {
	n := len(paths)
	q := &Query{paths: paths, hash: make([]int, n), own: make([]answer, n), spans: make([]span, n)}
	for i, p := range paths {
		q.list = appendPath(q.list, p)
		q.hash[i] = eachAt(p)
	}
	return q
}

// eachAt returns the offset of the first component of p that is exactly
// '#', or -1.
func eachAt(p string) int {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			i++
		case '#':
			if (i == 0 || p[i-1] == '.') && (i+1 == len(p) || p[i+1] == '.') {
				return i
			}
		}
	}
	return -1
}

// Run looks up every path in json: one host call, whatever the number of
// paths. Values are decoded when read: in a wasm guest, decoding every
// record up front costs more than the reads it would save.
func (q *Query) Run(json []byte) {
	q.json = json
	if q.owned {
		for i := range q.own {
			q.own[i].set = false
		}
		q.owned = false
	}
	n, ok := 0, false
	if len(json) > 0 {
		n, ok = hostGet(json, q.list, &q.recs)
	}
	if !ok || n < len(q.paths) {
		q.n = 0
		for i := range q.paths {
			q.spans[i] = span{}
			q.answer(i)
		}
		return
	}
	q.n = n
	np := len(q.paths)
	for i := range q.paths {
		r := &q.recs[i]
		q.spans[i] = span{}
		switch {
		case r.Type == jsonget.TypeUnsupported:
			q.answer(i)
		case q.hash[i] >= 0 && r.KeyLen > 0 && r.Stride > 0 && int(r.KeyStart) >= np &&
			int64(r.KeyStart)+int64(r.KeyLen-1)*int64(r.Stride) < int64(n):
			q.spans[i] = span{r.KeyStart, r.KeyLen, r.Stride}
		}
	}
}

// unescape returns a JSON string's content (raw holds the quotes),
// unescaped as gjson does. It allocates: strings rarely hold escapes.
//
//go:noinline
func unescape(raw string) string { return gjson.Parse(raw).Str }

// answer looks up path i with gjson in the guest.
func (q *Query) answer(i int) {
	q.owned = true
	a := &q.own[i]
	a.set = true
	p, json := q.paths[i], str(q.json)
	h := q.hash[i]
	if h < 0 {
		a.val = gjson.Get(json, p)
		return
	}
	prefix, suffix := strings.TrimSuffix(p[:h], "."), strings.TrimPrefix(p[h+1:], ".")
	if prefix == "" {
		a.val = gjson.Parse(json)
	} else {
		a.val = gjson.Get(json, prefix)
	}
	a.elems, a.keys = a.elems[:0], a.keys[:0]
	if !a.val.IsArray() && !a.val.IsObject() {
		return
	}
	a.val.ForEach(func(k, v Result) bool {
		if suffix != "" {
			// A scalar element has nothing below it (gjson would look
			// for a path inside a string's text, as the host does not).
			if v.IsArray() || v.IsObject() {
				v = v.Get(suffix)
			} else {
				v = Result{}
			}
		}
		v.Index = offsetIn(q.json, v.Raw)
		a.elems = append(a.elems, v)
		a.keys = append(a.keys, k.Str)
		return true
	})
}

// offsetIn returns where raw starts in json, or 0 when it is not inside
// (a value gjson computed), as gjson sets Result.Index.
func offsetIn(json []byte, raw string) int {
	if raw == "" || len(json) == 0 {
		return 0
	}
	d := int(uintptr(unsafe.Pointer(unsafe.StringData(raw))) - uintptr(unsafe.Pointer(unsafe.SliceData(json))))
	if d < 0 || d+len(raw) > len(json) {
		return 0
	}
	return d
}

// index returns the record of element j of '#' path i, or -1.
func (q *Query) index(i, j int) int {
	sp := &q.spans[i]
	if uint(j) >= uint(sp.count) {
		return -1
	}
	return int(sp.first) + j*int(sp.step)
}

// Get returns the value of path i; for a '#' path, the array or object
// it goes through.
func (q *Query) Get(i int) Result {
	if q.owned && q.own[i].set {
		return q.own[i].val
	}
	r, _ := decode(q.json, &q.recs[i])
	return r
}

// Raw is Get(i).Raw: the value's JSON text, "" when absent.
func (q *Query) Raw(i int) string {
	if q.owned && q.own[i].set {
		return q.own[i].val.Raw
	}
	return q.rawOf(&q.recs[i])
}

// Str is Get(i).Str: a string's content, unescaped ("" for other types).
func (q *Query) Str(i int) string {
	if q.owned && q.own[i].set {
		return q.own[i].val.Str
	}
	return q.strOf(&q.recs[i])
}

// rawOf returns the JSON text r points at, "" when absent.
func (q *Query) rawOf(r *hostcall.Record) string {
	start, end := int(r.Start), int(r.Start)+int(r.Len)
	if r.Type < jsonget.TypeNull || start < 0 || end > len(q.json) || start >= end {
		return ""
	}
	return str(q.json[start:end])
}

// strOf returns a string's content as Result.Str has it: "" unless a
// string.
func (q *Query) strOf(r *hostcall.Record) string {
	if r.Type != jsonget.TypeString {
		return ""
	}
	raw := q.rawOf(r)
	if r.Flags&jsonget.FlagEscaped != 0 {
		return unescape(raw)
	}
	if len(raw) < 2 {
		return ""
	}
	return raw[1 : len(raw)-1]
}

// Len returns the number of elements a '#' path went through (0 for other
// paths, and when there is no array or object there).
func (q *Query) Len(i int) int {
	if q.owned && q.own[i].set {
		return len(q.own[i].elems)
	}
	return int(q.spans[i].count)
}

// At returns the value of '#' path i in element j (0 <= j < Len(i)).
func (q *Query) At(i, j int) Result {
	if k := q.index(i, j); k >= 0 {
		v, _ := decode(q.json, &q.recs[k])
		return v
	}
	if q.owned && q.own[i].set {
		return q.own[i].at(j)
	}
	return Result{}
}

// RawAt is At(i, j).Raw.
func (q *Query) RawAt(i, j int) string {
	if k := q.index(i, j); k >= 0 {
		return q.rawOf(&q.recs[k])
	}
	return q.At(i, j).Raw
}

// StrAt is At(i, j).Str.
func (q *Query) StrAt(i, j int) string {
	if k := q.index(i, j); k >= 0 {
		return q.strOf(&q.recs[k])
	}
	return q.At(i, j).Str
}

// AppendRaws appends RawAt(i, j) for every element j < Len(i) to dst and
// returns it; AppendStrs and AppendKeys do the same for StrAt and Key.
// A column of a '#' path is read in one call instead of one per value:
// in a wasm guest a call costs tens of nanoseconds (the caller's live
// values go to memory and come back), as much as reading the value.
func (q *Query) AppendRaws(dst []string, i int) []string {
	sp := q.spans[i]
	if sp.count == 0 {
		return q.appendOwn(dst, i, colRaw)
	}
	for k := int(sp.first); sp.count > 0; sp.count-- {
		dst = append(dst, q.rawOf(&q.recs[k]))
		k += int(sp.step)
	}
	return dst
}

// AppendStrs appends StrAt(i, j) for every element j < Len(i) to dst.
func (q *Query) AppendStrs(dst []string, i int) []string {
	sp := q.spans[i]
	if sp.count == 0 {
		return q.appendOwn(dst, i, colStr)
	}
	for k := int(sp.first); sp.count > 0; sp.count-- {
		r := &q.recs[k]
		k += int(sp.step)
		if r.Type != jsonget.TypeString || r.Flags&jsonget.FlagEscaped != 0 {
			dst = append(dst, q.strOf(r)) // "" or unescaped: rare
			continue
		}
		raw := q.rawOf(r)
		if len(raw) < 2 {
			raw = `""`
		}
		dst = append(dst, raw[1:len(raw)-1])
	}
	return dst
}

// AppendKeys appends Key(i, j) for every element j < Len(i) to dst.
func (q *Query) AppendKeys(dst []string, i int) []string {
	sp := q.spans[i]
	if sp.count == 0 {
		return q.appendOwn(dst, i, colKey)
	}
	for j := range int(sp.count) {
		r := &q.recs[int(sp.first)+j*int(sp.step)]
		if r.Flags&jsonget.FlagKeyEscaped != 0 || r.KeyStart < 0 || int(r.KeyStart)+int(r.KeyLen) > len(q.json) {
			dst = append(dst, q.Key(i, j)) // "" or unescaped: rare
			continue
		}
		dst = append(dst, str(q.json[r.KeyStart:r.KeyStart+r.KeyLen]))
	}
	return dst
}

// Columns of the Append methods.
const (
	colRaw = iota
	colStr
	colKey
)

// appendOwn is the Append methods for a path the guest answered (or one
// with no elements).
//
//go:noinline
func (q *Query) appendOwn(dst []string, i, col int) []string {
	for j := range q.Len(i) {
		switch col {
		case colRaw:
			dst = append(dst, q.RawAt(i, j))
		case colStr:
			dst = append(dst, q.StrAt(i, j))
		default:
			dst = append(dst, q.Key(i, j))
		}
	}
	return dst
}

// Key returns the key of element j of '#' path i when it went through an
// object ("" in an array).
func (q *Query) Key(i, j int) string {
	if k := q.index(i, j); k >= 0 {
		r := &q.recs[k]
		if r.KeyStart < 0 || int(r.KeyStart)+int(r.KeyLen) > len(q.json) {
			return ""
		}
		key := str(q.json[r.KeyStart : r.KeyStart+r.KeyLen])
		if r.Flags&jsonget.FlagKeyEscaped != 0 {
			return unescape(`"` + key + `"`)
		}
		return key
	}
	if q.owned && q.own[i].set {
		return q.own[i].key(j)
	}
	return ""
}

func (a *answer) at(j int) Result {
	if j >= 0 && j < len(a.elems) {
		return a.elems[j]
	}
	return Result{}
}

func (a *answer) key(j int) string {
	if j >= 0 && j < len(a.keys) {
		return a.keys[j]
	}
	return ""
}
