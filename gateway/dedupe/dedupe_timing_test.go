package dedupe

import (
	"os"
	"strconv"
	"sync/atomic"
	"testing"
)

func BenchmarkCheckDuplicate(b *testing.B) {
	d := mustNew(b, Spec{Header: "webhook-id"})
	key, eventID := []byte("msg_p5jXN8AQM9LWM0D4loKWxJek"), []byte("evt_01hzzzzzzzzzzzzzzzzzzzzzzz")
	d.Check(key, eventID)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d.Check(key, eventID)
		}
	})
}

func BenchmarkCheckNew(b *testing.B) {
	d := mustNew(b, Spec{Header: "webhook-id", MaxEntries: 100_000})
	eventID := []byte("evt_01hzzzzzzzzzzzzzzzzzzzzzzz")
	var seq atomic.Uint64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		key := make([]byte, 0, 32)
		for pb.Next() {
			key = strconv.AppendUint(append(key[:0], "msg_"...), seq.Add(1), 10)
			d.Check(key, eventID)
		}
	})
}

func BenchmarkKeyJSON(b *testing.B) {
	howxm, err := os.ReadFile("../../testdata/howxm_entry_submitted.json")
	if err != nil {
		b.Fatal(err)
	}
	d := mustNew(b, Spec{JSON: []string{"entry.serial_number"}})
	dst := make([]byte, 0, 64)
	b.ReportAllocs()
	b.SetBytes(int64(len(howxm)))
	for b.Loop() {
		dst, _ = d.Key(headers{}.peek, howxm, dst)
	}
}
