package sdk

// A step's configuration never changes while its config_id lives, so it is
// parsed on the first call that sees the id and reused after. A bad
// configuration is cached too: every call fails fast with the same message.

// ConfigCache holds parsed configurations of type T by config id. The zero
// value is ready to use; declare one per plugin as a package variable:
//
//	var configs sdk.ConfigCache[*config]
//
//	func handle(e *sdk.Event) error {
//		cfg, err := configs.Load(e, parseConfig)
//		if err != nil {
//			return err
//		}
//		...
//	}
type ConfigCache[T any] struct {
	lastID  int32
	last    *configEntry[T]
	entries map[int32]*configEntry[T]
}

type configEntry[T any] struct {
	val T
	err error
}

// maxConfigs bounds the cache: ids of configurations unloaded by a reload
// are never asked for again, so starting over is cheap and safe.
const maxConfigs = 64

// Load returns the parsed configuration of e's step, calling parse with
// e.Config() the first time the step's config id is seen.
func (c *ConfigCache[T]) Load(e *Event, parse func(raw []byte) (T, error)) (T, error) {
	if c.last != nil && c.lastID == e.configID {
		return c.last.val, c.last.err
	}
	ent, ok := c.entries[e.configID]
	if !ok {
		if c.entries == nil || len(c.entries) >= maxConfigs {
			c.entries = make(map[int32]*configEntry[T])
		}
		ent = &configEntry[T]{}
		ent.val, ent.err = parse(e.Config())
		c.entries[e.configID] = ent
	}
	c.lastID, c.last = e.configID, ent
	return ent.val, ent.err
}

// loaded backs LoadConfig: one cache per plugin, whatever T is. lastID and
// last remember the entry of the last call: a step's calls come in runs,
// and a map lookup costs a wasm guest tens of nanoseconds per call.
var (
	loaded = map[int32]any{}
	lastID int32
	last   any
)

// LoadConfig is ConfigCache.Load without declaring a cache: the parsed value
// is kept per config id in a cache shared by the plugin. Use one type T per
// plugin (a second type for the same id is parsed again and replaces it).
func LoadConfig[T any](e *Event, parse func(raw []byte) (T, error)) (T, error) {
	if last != nil && lastID == e.configID {
		if ent, ok := last.(*configEntry[T]); ok {
			return ent.val, ent.err
		}
	}
	if v, ok := loaded[e.configID]; ok {
		if ent, ok := v.(*configEntry[T]); ok {
			lastID, last = e.configID, v
			return ent.val, ent.err
		}
	}
	if len(loaded) >= maxConfigs {
		clear(loaded)
	}
	ent := &configEntry[T]{}
	ent.val, ent.err = parse(e.Config())
	loaded[e.configID] = ent
	lastID, last = e.configID, ent
	return ent.val, ent.err
}
