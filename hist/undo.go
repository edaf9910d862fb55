package hist

// undo logs what one ValidateAndMergeProto changed, to take it back.
type undo struct {
	created []Key
	added   []undoAdd
}

type undoAdd struct {
	s       *Series
	j       int
	before  accum
	sparse  []byte
	created bool // the histogram was created for this add
	// direct: nothing went into the pending counts (the counts were
	// dropped, or recorded straight into a histogram of a snapshot that
	// was validated first, so that it is never rolled back).
	direct bool
}

func (u *undo) reset() {
	u.created = u.created[:0]
	clear(u.added) // no pointers into old snapshots kept
	u.added = u.added[:0]
}

// rollback takes back everything u logged, newest first.
func (u *undo) rollback(s *Set) {
	for i := len(u.added) - 1; i >= 0; i-- {
		x := u.added[i]
		a := x.s.pend[x.j]
		if !x.direct {
			subSparse(a.c, x.sparse)
		}
		*a = x.before
		if x.created {
			x.s.dropHist(x.j)
		}
	}
	for _, k := range u.created {
		if sr := s.m[k]; sr != nil {
			sr.release(s.pool)
		}
		delete(s.m, k)
	}
	u.reset()
}
