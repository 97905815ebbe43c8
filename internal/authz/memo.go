package authz

import (
	"encoding/binary"
	"sync"
)

// The decisions of AllowRepeated are kept with the snapshot that made
// them. A snapshot never changes (an update builds a new one and swaps it
// in), so an answer kept for snapshot s is the answer s would give again;
// a memo is only ever consulted for the snapshot it belongs to, so a new
// snapshot (a revoked binding, a new policy) starts with no answers.
type decisionMemo struct {
	snap *snapshot
	mu   sync.RWMutex
	m    map[string]Decision
}

const (
	// memoEntries bounds a memo: when full it is emptied, so questions
	// that keep coming back return to it while one-off ones cannot grow it.
	memoEntries = 4096
	// memoKeyMax is the longest key kept (longer inputs are evaluated
	// every time): at most memoEntries × memoKeyMax bytes of keys.
	memoKeyMax = 512
)

// AllowRepeated is Allow for questions asked again and again with the
// same input, such as a caller's right to call an API endpoint: the
// answer is kept with the current snapshot and given again for the same
// input until the snapshot is replaced. The answer is always the one
// Allow gives on the snapshot current when the call began.
func (e *Engine) AllowRepeated(in Input) Decision {
	s := e.snap.Load()
	var buf [memoKeyMax]byte
	key, ok := appendMemoKey(buf[:0], in)
	if !ok {
		return s.allow(in)
	}
	m := e.memo.Load()
	if m == nil || m.snap != s {
		fresh := &decisionMemo{snap: s, m: make(map[string]Decision)}
		if !e.memo.CompareAndSwap(m, fresh) {
			return s.allow(in) // another caller replaced it first
		}
		m = fresh
	}
	m.mu.RLock()
	d, hit := m.m[string(key)]
	m.mu.RUnlock()
	if hit {
		return d
	}
	d = s.allow(in)
	m.mu.Lock()
	if len(m.m) >= memoEntries {
		clear(m.m)
	}
	m.m[string(key)] = d
	m.mu.Unlock()
	return d
}

// appendMemoKey encodes every field of in, each string and each list
// prefixed with its length so that no two inputs share a key
// (TestMemoKeyCoversInput). ok is false when the key would be longer than
// memoKeyMax.
func appendMemoKey(b []byte, in Input) ([]byte, bool) {
	str := func(v string) {
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	list := func(vs []string) {
		b = binary.AppendUvarint(b, uint64(len(vs)))
		for _, v := range vs {
			str(v)
		}
	}
	n := len(in.PrincipalID) + len(in.PrincipalEmail) + len(in.OnBehalfOf) + len(in.Method) + len(in.Path)
	for _, v := range in.PrincipalGroups {
		n += len(v)
	}
	for _, v := range in.Scopes {
		n += len(v)
	}
	if n > memoKeyMax/2 {
		return nil, false
	}
	str(in.PrincipalID)
	str(in.PrincipalEmail)
	list(in.PrincipalGroups)
	str(in.OnBehalfOf)
	str(in.Method)
	str(in.Path)
	list(in.Scopes)
	if len(b) > memoKeyMax {
		return nil, false
	}
	return b, true
}
