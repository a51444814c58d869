package queue

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hookgate/hookgate/delivery"
)

// Sync policies (the values of config queue.sync).
const (
	SyncAlways = "always" // fsync before Enqueue returns; concurrent calls share an fsync
	SyncBatch  = "batch"  // Enqueue returns once the deliveries are staged, written 10-20 ms later unless acked, fsynced in the background (stage.go)
)

// Options configure a Store.
type Options struct {
	Path     string // directory, created if missing
	Sync     string // SyncAlways (default) or SyncBatch
	MaxDepth int    // pending deliveries before ErrFull; 0 = unlimited
	MaxBytes int64  // pending record bytes before ErrFull; 0 = unlimited
	Logger   *slog.Logger
	// FS is the filesystem the store lives on; nil: the real one
	// (vfs.Default, its syncs made through internal/handoff on Linux).
	// Tests pass one that fills up or fails (fillfs).
	FS vfs.FS
	// MinFree is the free space, in bytes, the store leaves on its
	// filesystem: below it Enqueue refuses new deliveries (ErrNoSpace)
	// while Ack, Retry and Dead go on, so the deliveries already stored
	// keep going out and Pebble keeps the room it needs to flush and
	// compact. 0: DefaultMinFree, but at most a quarter of the
	// filesystem.
	MinFree int64
	// OnFatal is called once, with the reason, when the store cannot take
	// another write: Pebble does not go on after a write to its log failed
	// (the log's error sticks, and the next rotation panics with the
	// commit lock held), so the process must exit and let a restart
	// recover from what is on disk. nil: the store logs the reason and
	// refuses every write from then on (ErrFailed).
	OnFatal func(error)
}

// DefaultMinFree is the free space a store leaves on its filesystem unless
// Options.MinFree says otherwise: room for Pebble to flush its two
// memtables and for the compactions that follow, with a wide margin (it
// was four 64 MiB memtables' worth when those were the size, and stayed
// when they shrank: what a compaction needs grows with what is stored,
// not with the memtable).
const DefaultMinFree = 256 << 20

// spaceEvery is how often the store measures its filesystem's free space.
const spaceEvery = time.Second

// batchSyncEvery is how long, with sync "batch", a write waits for the
// fsync of the log: the store fsyncs it that long after the first write
// since the last fsync (health.go, watch), so what a power cut can lose
// is at most about that old, and an idle store makes no fsync at all.
// 30 ms, so that with the 10-20 ms an Enqueue stays staged before its
// write (stage.go) a crash or power cut loses about the last 50 ms, as
// when the fsync came 50 ms after the write and nothing was staged.
//
// It is short for the latency as well. Pebble fsyncs a log when it
// moves to the next one (a memtable filled: every 300 ms or so under
// load) with every commit waiting, and that fsync writes out and flushes
// from the disk's cache all that was written since the log's last one.
// Synced once a second, a rotation held every commit 10-15 ms, while the
// one core had nothing else to run: idle 3.9% of the time in the async
// harness, 0.4-1.0% with 50 ms, and the slowest requests waited half as
// long (RATIONALE.md, "The log is fsynced 30 ms after a write").
const batchSyncEvery = 30 * time.Millisecond

// Key layout. Every delivery gets a sequence number (Ref) at Enqueue; its
// keys are the one-byte kind, then the big-endian sequence:
//
//	d<seq>          the delivery's first pending state and its record (codec.go), written once
//	p<seq>          pending state (target, due, enqueued, size, attempts), once retried or replayed
//	x<seq>          dead-letter state: target, route, enqueued, dead at, size, attempts
//	a<seq><n:4>     attempt n
//	i<delivery id>  seq of a dead letter, for replay by id
//
// Ready order lives in memory (a heap per target, rebuilt at Open from the
// p keys and the pending states stored with the records) rather than in an
// index ordered by due time: a queue on an LSM tree that deletes from the
// head of an ordered index makes every scan step over the tombstones of
// everything acked since the last compaction.
const (
	kindRecord  = 'd'
	kindPending = 'p'
	kindDead    = 'x'
	kindAttempt = 'a'
	kindID      = 'i'
)

type seqKey [9]byte

func keyOf(kind byte, seq uint64) seqKey {
	var k seqKey
	k[0] = kind
	binary.BigEndian.PutUint64(k[1:], seq)
	return k
}

type attemptKey [13]byte

func attemptKeyOf(seq uint64, n int) attemptKey {
	var k attemptKey
	k[0] = kindAttempt
	binary.BigEndian.PutUint64(k[1:9], seq)
	binary.BigEndian.PutUint32(k[9:], uint32(n))
	return k
}

// entry is the in-memory state of one pending delivery.
type entry struct {
	seq      uint64
	due      int64
	enqueued int64
	size     int64
	attempts int
	pkey     pkeyState // what its p key is: deleted with its ack (acks.go)
	heapIdx  int       // position in tq.ready; leasedIdx while leased, waitingIdx behind its sequence's head
	leaseEnd int64     // unix nanoseconds
	claim    uint64    // the Ref of its latest claim (lease.go); 0 before the first
	busy     bool      // a Retry is writing its new state: other updates are refused
	tq       *targetQ
	// In a sequence (Delivery.Ordered; fifo.go): the sequence, the
	// position in it, and the next one. fs is nil for any other delivery.
	fs    *fifoSeq
	order uint64
	next  *entry
	held  bool // its Enqueue has not committed yet: not ready even at the head
	// staged: its record is staged, not written yet (stage.go), so its
	// ack deletes nothing, and anything else written about it waits for
	// the record's write. Its stored value is stRec, in generation stGen
	// while that is in epoch stEpoch: staged, and while being written,
	// until the write is visible and the generation emptied. A claim
	// reads it from there.
	staged  bool
	stRec   []byte
	stGen   *generation
	stEpoch uint64
}

type targetQ struct {
	name   string
	ready  entryHeap
	leased map[uint64]*entry
	// firstLeaseEnd is at or before the earliest leaseEnd in leased
	// (unix ns; 0 when nothing was leased yet): Claim walks leased for
	// expired leases only once it is reached, not on every claim.
	firstLeaseEnd int64
	bytes         int64
	dead          int
	seqs          map[orderID]*fifoSeq // the sequences with pending deliveries (fifo.go); nil until the first
	waiting       int                  // entries behind the head of their sequence: neither ready nor leased
}

// Store is the embedded queue engine. It is safe for concurrent use.
type Store struct {
	db      *pebble.DB
	lock    *pebble.Lock
	opts    Options
	syncOpt *pebble.WriteOptions
	// waiting counts the callers of the synced commits under way: how
	// many wait for the log's next fsync, which decides how it is made
	// (handoff_linux.go).
	waiting *atomic.Int32
	log     *slog.Logger
	seq     atomic.Uint64

	// life is held shared by every call that touches db and exclusively by
	// Close, so Close waits for them and they never see a closed db.
	life   sync.RWMutex
	closed bool

	mu      sync.Mutex
	targets map[string]*targetQ
	entries map[uint64]*entry
	claims  map[Ref]*entry // by the Ref of its latest claim (lease.go)
	claimed uint64         // the last Ref handed out
	depth   int            // pending plus reserved by Enqueue calls in progress
	bytes   int64          // same, in record bytes
	free    []*entry
	// freeSeqs recycles sequences: keys come and go with the traffic
	// (one per customer), and a new one must not allocate.
	freeSeqs []*fifoSeq

	namesMu sync.RWMutex
	names   map[string]string

	replayMu sync.Mutex // replays read then rewrite dead letters

	// Disk space and failure (health.go). headroom is the free space above minFree as
	// last measured, less what Enqueue wrote since: Enqueue refuses when
	// it would go below 0, so the store never fills the disk itself
	// between two measurements.
	fs       vfs.FS
	minFree  atomic.Int64 // as last measured (it may depend on the disk's size)
	headroom atomic.Int64
	freeDisk atomic.Int64 // as last measured
	low      atomic.Bool  // free < minFree at the last measurement
	stop     chan struct{}
	stopped  chan struct{}
	stopOnce sync.Once

	// With sync "batch": unsynced says a write was committed since the
	// log's last fsync began, and written (capacity 1) tells watch so,
	// once per fsync, which it makes batchSyncEvery later. nil with sync
	// "always", where the next Enqueue's fsync syncs what came before.
	unsynced atomic.Bool
	written  chan struct{}

	failure atomic.Pointer[failure] // set once Pebble failed a write

	recent *recent // the latest records, for claims (recent.go)

	// stage holds the deliveries that sync "batch" has not written yet
	// (stage.go); nil with "always". stageDone is closed when its loop
	// has returned.
	stage     *stager
	stageDone chan struct{}

	// oneP is GOMAXPROCS == 1, read at Open and at each tick (watch):
	// Enqueue's and Ack's leaders yield only then (enqueue.go, acks.go),
	// and runtime.GOMAXPROCS takes the scheduler's lock at each call.
	oneP atomic.Bool

	// Enqueue calls committed together (enqueue.go): the group taking
	// members (nil: the next call leads a new one) and spare groups.
	groupMu    sync.Mutex
	group      *enqGroup
	freeGroups []*enqGroup
	batches    atomic.Uint64 // Enqueue batches committed, for tests

	// Acks applied in memory whose deletes wait for their commit
	// (acks.go): acks and ackLeader (an Ack is committing them) under
	// ackMu; flushMu held by each commit of acks, and ackSpare, the
	// buffer the next one swaps in, with it.
	ackMu     sync.Mutex
	acks      []ackedEntry
	ackLeader bool
	flushMu   sync.Mutex
	ackSpare  []ackedEntry
}

var _ Engine = (*Store)(nil)

// Open opens (or creates) the store at opts.Path and rebuilds its memory:
// every delivery not acked or dead is ready again at its due time, which is
// how deliveries in flight at a crash get sent again.
func Open(opts Options) (*Store, error) {
	if opts.Path == "" {
		return nil, errors.New("queue: open: no path: set queue.path")
	}
	waiting := new(atomic.Int32)
	if opts.FS == nil {
		opts.FS = diskFS(waiting)
	}
	s := &Store{
		waiting: waiting,
		opts:    opts,
		log:     opts.Logger,
		targets: make(map[string]*targetQ),
		entries: make(map[uint64]*entry),
		claims:  make(map[Ref]*entry),
		names:   make(map[string]string),
		fs:      opts.FS,
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
		recent:  newRecent(),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	switch opts.Sync {
	case "", SyncAlways:
		s.syncOpt = pebble.Sync
	case SyncBatch:
		s.syncOpt = pebble.NoSync
		s.written = make(chan struct{}, 1)
		s.stage = newStager()
	default:
		return nil, fmt.Errorf("queue: open: sync %q: want %q or %q", opts.Sync, SyncAlways, SyncBatch)
	}
	if err := os.MkdirAll(opts.Path, 0o755); err != nil {
		return nil, fmt.Errorf("queue: open: %w", err)
	}
	// Take the directory lock first so "in use" gets its own error.
	lock, err := pebble.LockDirectory(opts.Path, opts.FS)
	if err != nil {
		return nil, fmt.Errorf("queue: open %s: %w (%v): another hookgate is using it; stop that one, or use its admin API", opts.Path, ErrLocked, err)
	}
	po := &pebble.Options{FS: opts.FS, Logger: pebbleLogger{s}, Lock: lock, MemTableSize: memTableSize,
		MemTableStopWritesThreshold: memTableStopWrites, WALMinSyncInterval: yieldBeforeSync} // groupcommit.go
	po.Levels[0].BlockSize = tableBlockSize // the other levels take L0's
	db, err := pebble.Open(opts.Path, po)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("queue: open %s: %w", opts.Path, err)
	}
	s.db, s.lock = db, lock
	if err := s.load(); err != nil {
		db.Close()
		lock.Close()
		return nil, fmt.Errorf("queue: open %s: %w", opts.Path, err)
	}
	s.measure()
	s.oneP.Store(runtime.GOMAXPROCS(0) == 1)
	go s.watch(spaceEvery)
	if s.stage != nil {
		s.stageDone = make(chan struct{})
		go func() {
			defer close(s.stageDone)
			s.stageLoop()
		}()
	}
	return s, nil
}

// load rebuilds the store's memory from what is stored. A delivery is
// pending when it has a p key (retried, replayed, or enqueued by hookgate
// before one key per delivery), or when its record carries its pending
// state and it is not a dead letter; the p key, written later, wins.
func (s *Store) load() error {
	maxSeq := uint64(0)
	type inSeq struct {
		e *entry
		o ordering
	}
	var ordered []inSeq
	add := func(seq uint64, p pending, pkey pkeyState) {
		tq := s.target(string(p.target))
		e := &entry{seq: seq, due: p.due, enqueued: p.enqueued, size: p.size, attempts: p.attempts, pkey: pkey, tq: tq}
		s.entries[seq] = e
		if p.ord.ordered {
			ordered = append(ordered, inSeq{e, p.ord})
			maxSeq = max(maxSeq, p.ord.order)
		} else {
			tq.ready.push(e)
		}
		tq.bytes += p.size
		s.depth++
		s.bytes += p.size
		maxSeq = max(maxSeq, seq)
	}
	var dead []uint64 // in sequence order, as scanned
	err := s.scan(kindDead, func(seq uint64, v []byte) error {
		di, err := decodeDead(v)
		if err != nil {
			return fmt.Errorf("dead letter %d: %w", seq, err)
		}
		s.target(string(di.target)).dead++
		maxSeq = max(maxSeq, seq, di.ord.order)
		dead = append(dead, seq)
		return nil
	})
	if err != nil {
		return err
	}
	err = s.scan(kindPending, func(seq uint64, v []byte) error {
		p, err := decodePending(v)
		if err != nil {
			return fmt.Errorf("pending %d: %w", seq, err)
		}
		// Written once for a delivery never retried; a retried one's
		// may have been rewritten.
		pkey := pkeyOnce
		if p.attempts > 0 {
			pkey = pkeyRewritten
		}
		add(seq, p, pkey)
		return nil
	})
	if err != nil {
		return err
	}
	err = s.scan(kindRecord, func(seq uint64, v []byte) error {
		maxSeq = max(maxSeq, seq)
		if s.entries[seq] != nil {
			return nil // its p key says where it is
		}
		for len(dead) > 0 && dead[0] < seq {
			dead = dead[1:]
		}
		if len(dead) > 0 && dead[0] == seq {
			return nil // a dead letter
		}
		_, pend, err := splitStored(v)
		if err != nil {
			return fmt.Errorf("record %d: %w", seq, err)
		}
		if pend == nil {
			// Stored on its own by an older hookgate, with neither
			// a p key nor a dead letter's: nothing refers to it.
			return nil
		}
		p, err := decodePending(pend)
		if err != nil {
			return fmt.Errorf("record %d: %w", seq, err)
		}
		add(seq, p, pkeyNone)
		return nil
	})
	if err != nil {
		return err
	}
	// Sequences are rebuilt in their stored order, which is the sequence
	// number except for replayed dead letters (at the back: fifo.go).
	slices.SortFunc(ordered, func(a, b inSeq) int { return cmp.Compare(a.o.order, b.o.order) })
	for _, x := range ordered {
		s.join(x.e.tq, x.e, x.o)
	}
	// Sequence numbers start at the clock so they stay unique even when
	// everything was acked and deleted before a restart; above every
	// stored one and every stored order, so what is enqueued next goes
	// behind everything in its sequence.
	s.seq.Store(max(maxSeq, uint64(time.Now().UnixNano())))
	return nil
}

// scan calls fn for every key of kind, in sequence order.
func (s *Store) scan(kind byte, fn func(seq uint64, v []byte) error) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kind}, UpperBound: []byte{kind + 1}})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != 9 {
			continue
		}
		if err := fn(binary.BigEndian.Uint64(k[1:]), it.Value()); err != nil {
			it.Close()
			return err
		}
	}
	return it.Close()
}

// target returns the queue of name, creating it; s.mu held (or at load).
func (s *Store) target(name string) *targetQ {
	tq := s.targets[name]
	if tq == nil {
		tq = &targetQ{name: strings.Clone(name), leased: make(map[uint64]*entry)}
		s.targets[tq.name] = tq
	}
	return tq
}

// Close syncs the log and closes the store; it waits for calls in progress.
// After a failure (OnFatal) it returns at once and leaves Pebble and the
// directory lock as they are: Pebble may wait forever on its own commit
// lock then, and the process is about to exit, which lets go of both;
// what is on disk is what the next Open finds.
func (s *Store) Close() error {
	s.stopOnce.Do(func() {
		close(s.stop)
		<-s.stopped
		if s.stageDone != nil {
			<-s.stageDone
		}
	})
	if f := s.failure.Load(); f != nil {
		return fmt.Errorf("queue: close: %w", f)
	}
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	// Ack, Retry and batch-mode Enqueue do not wait for the fsync; make
	// them durable before the process goes, the staged deliveries first.
	stageErr := s.flushStaged()
	ackErr := s.flushAcks()
	syncErr := s.syncLog()
	if f := s.failure.Load(); f != nil { // that very sync failed
		return fmt.Errorf("queue: close: %w", f)
	}
	err := s.db.Close()
	s.lock.Close()
	if err != nil {
		return fmt.Errorf("queue: close: %w", err)
	}
	if syncErr != nil {
		return fmt.Errorf("queue: close: sync log: %w", syncErr)
	}
	if stageErr != nil {
		return fmt.Errorf("queue: close: staged deliveries: %w", stageErr)
	}
	if ackErr != nil {
		return fmt.Errorf("queue: close: acks: %w", ackErr)
	}
	return nil
}

// Enqueue stores ds in one atomic batch (see the package documentation for
// durability). Each delivery must name its Target.
func (s *Store) Enqueue(ds []delivery.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	s.life.RLock()
	defer s.life.RUnlock()
	if s.closed {
		return ErrClosed
	}
	var size int64
	for i := range ds {
		if ds[i].Target == "" {
			return errors.New("queue: enqueue: delivery without a target")
		}
		size += int64(recordLen(&ds[i]))
	}
	if f := s.failure.Load(); f != nil {
		return fmt.Errorf("queue: enqueue: %w", f)
	}
	if err := s.takeSpace(size); err != nil {
		return err
	}
	now := time.Now().UnixNano()
	first, err := s.reserve(ds, size, now)
	if err != nil {
		s.giveSpace(size)
		return err
	}
	if s.stageable(ds, size) {
		if err := s.stageCall(ds, first, now, size); err != nil {
			return fmt.Errorf("queue: enqueue: %w", err)
		}
		return nil
	}
	if s.stage != nil {
		// Written at once, behind what was staged before it.
		err = s.flushStaged()
	}
	if err == nil {
		err = s.write(ds, first, now, size)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.unreserve(ds, first)
		return fmt.Errorf("queue: enqueue: %w", err)
	}
	s.commitEntries(ds, first, now, nil)
	return nil
}

// commitEntries puts the deliveries of an Enqueue call, numbered from
// first, in the queue once they are written (or staged: stage.go). s.mu
// held.
func (s *Store) commitEntries(ds []delivery.Delivery, first uint64, now int64, g *generation) {
	for i := range ds {
		d := &ds[i]
		var e *entry
		if d.Ordered {
			e = s.entries[first+uint64(i)]
		} else {
			e = s.newEntry()
			*e = entry{seq: first + uint64(i), due: dueOf(d, now), enqueued: now, size: int64(recordLen(d)), tq: s.target(d.Target)}
		}
		if g != nil {
			// This call's items are the generation's last len(ds).
			it := g.items[len(g.items)-len(ds)+i]
			e.staged, e.stRec, e.stGen, e.stEpoch = true, g.buf[it.at:it.to:it.to], g, g.epoch.Load()
		}
		if d.Ordered {
			s.commitOrdered(e)
			continue
		}
		s.entries[e.seq] = e
		e.tq.ready.push(e)
		e.tq.bytes += e.size
	}
}

// unreserve gives back what reserve took for an Enqueue call whose write
// failed. s.mu held.
func (s *Store) unreserve(ds []delivery.Delivery, first uint64) {
	for i := range ds {
		if ds[i].Ordered {
			s.drop(s.entries[first+uint64(i)]) // gives back its share of the budget
		} else {
			s.depth--
			s.bytes -= int64(recordLen(&ds[i]))
		}
	}
}

func dueOf(d *delivery.Delivery, now int64) int64 {
	if d.NotBefore > now {
		return d.NotBefore
	}
	return now
}

// reserve takes budget for an Enqueue before it writes, so concurrent
// calls cannot overshoot the budget together, and gives ds their sequence
// numbers, the first of which it returns. An ordered delivery also takes
// its place in its sequence here, held (not ready) until its write is
// committed: numbering and placing it in one critical section keeps the
// order in memory the order on disk when concurrent calls commit out of
// turn, so a restart rebuilds the same sequences (fifo.go).
func (s *Store) reserve(ds []delivery.Delivery, size int64, now int64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(ds)
	if s.opts.MaxDepth > 0 && s.depth+n > s.opts.MaxDepth {
		return 0, fmt.Errorf("queue: enqueue: %d deliveries pending, max_depth is %d: %w", s.depth, s.opts.MaxDepth, ErrFull)
	}
	if s.opts.MaxBytes > 0 && s.bytes+size > s.opts.MaxBytes {
		return 0, fmt.Errorf("queue: enqueue: %d bytes pending, max_bytes is %d: %w", s.bytes, s.opts.MaxBytes, ErrFull)
	}
	s.depth += n
	s.bytes += size
	first := s.seq.Add(uint64(n)) - uint64(n) + 1
	for i := range ds {
		if d := &ds[i]; d.Ordered {
			e := s.newEntry()
			*e = entry{seq: first + uint64(i), due: dueOf(d, now), enqueued: now, size: int64(recordLen(d)), tq: s.target(d.Target), held: true}
			s.entries[e.seq] = e
			s.join(e.tq, e, orderOf(true, d.OrderKey, e.seq))
			e.tq.bytes += e.size
		}
	}
	return first, nil
}

func (s *Store) newEntry() *entry {
	if n := len(s.free); n > 0 {
		e := s.free[n-1]
		s.free = s.free[:n-1]
		return e
	}
	return new(entry)
}

// drop forgets e (acked or dead); s.mu held.
func (s *Store) drop(e *entry) {
	switch {
	case e.heapIdx >= 0:
		e.tq.ready.remove(e)
	case e.heapIdx == leasedIdx:
		delete(e.tq.leased, e.seq)
	}
	if e.fs != nil {
		s.leave(e) // the next in its sequence, if any, is ready now
	}
	delete(s.entries, e.seq)
	if e.claim != 0 {
		delete(s.claims, Ref(e.claim))
	}
	e.tq.bytes -= e.size
	s.depth--
	s.bytes -= e.size
	if len(s.free) < 4096 {
		*e = entry{}
		s.free = append(s.free, e)
	}
}

// Stats describes every target that has pending or dead deliveries.
func (s *Store) Stats() map[string]TargetStats {
	now := time.Now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]TargetStats, len(s.targets))
	for name, tq := range s.targets {
		st := TargetStats{Depth: len(tq.ready) + len(tq.leased) + tq.waiting, Leased: len(tq.leased), Bytes: tq.bytes, Dead: tq.dead}
		oldest := int64(0)
		for _, e := range tq.ready {
			if oldest == 0 || e.enqueued < oldest {
				oldest = e.enqueued
			}
		}
		for _, e := range tq.leased {
			if oldest == 0 || e.enqueued < oldest {
				oldest = e.enqueued
			}
		}
		for _, fs := range tq.seqs {
			for e := fs.head; e != nil; e = e.next {
				if oldest == 0 || e.enqueued < oldest {
					oldest = e.enqueued
				}
			}
		}
		if oldest != 0 {
			st.OldestAge = time.Duration(now - oldest)
		}
		out[name] = st
	}
	return out
}

// pebbleLogger sends pebble's messages to slog. Pebble calls Fatalf where
// it cannot go on (most often a failed write to its log); the store then
// fails (OnFatal), and Fatalf panics, because Pebble carries on after it
// returns as if the write had worked: commit turns that panic into an
// error for the caller.
type pebbleLogger struct{ s *Store }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.s.log.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.s.log.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	err := fmt.Errorf(format, args...)
	p.s.fail(err)
	panic(pebbleFatal{err})
}

// memTableSize is larger than Pebble's default (4 MiB) because a queue's
// records are usually deleted soon after they are written: when the ack's
// tombstone meets the record in the same memtable, the flush drops the body
// and it never costs a compaction; a record still pending when its
// memtable fills is flushed and compacted away later. It is not larger
// because a memtable's memory is the gateway's (up to two of them are
// resident) and a fresh one's pages are touched for the first time: 64
// MiB measured 176 MiB peak RSS in the async harness against 79 MiB at 16
// MiB, with no more events per second or less CPU per event (RATIONALE.md,
// "Memtable size"). A batch of half this size or more (an event whose
// deliveries' records add up to 8 MiB) is committed as its own flushable
// batch, which Pebble supports but flushes at once.
const memTableSize = 16 << 20

// tableBlockSize is the sstables' data block size, 4 times Pebble's
// default (4 KiB). What the store reads back from its tables is a backlog
// (a target's outage, deliveries behind ingest), claimed in sequence
// order through one iterator (readClaimed), and a record is a webhook's
// body of a few KiB: a 4 KiB block held one or two, and each cost a read
// of its own (a pread and a checksum). With 16 KiB,
// BenchmarkClaimBacklog drained 80 MB of tables at 5.4 µs a delivery
// against 7.5 µs (medians of 5 interleaved runs), and the load harness with the default 64 workers
// per target acknowledged 1.20x as many events at 0.81x the CPU
// (benchmarks/HISTORY.md, thirty-third run). A single record read with a
// Get (a dead letter's) reads a larger block; those are rare.
const tableBlockSize = 16 << 10

// memTableStopWrites is how many memtables (and flushable batches) may
// wait for their flush before Pebble stops writes. Pebble's default, 2,
// would stop them at 32 MiB of unflushed data where the 64 MiB memtables
// allowed 128: 4 lets a burst of large events queue 64 MiB before
// Enqueue waits for a flush. Memtables past the one being written exist
// only while they wait, so the threshold bounds memory in a burst and
// costs none under a steady load. BenchmarkEnqueueLarge (1 MiB
// bodies to two targets, 32 senders, medians of 3): 198 events/s against
// 189 with 2, and 219 with the old 64 MiB memtables.
const memTableStopWrites = 4
