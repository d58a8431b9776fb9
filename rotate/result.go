package rotate

// Result says what a call of Cut did.
type Result struct {
	Archive string // the archive written; empty when nothing was archived
	// Removed is how many bytes this call took from the front of the file
	// (collapse): every offset in it moved down by this much.
	Removed int64
	// Method is how this cut's head left the live file: collapse, punch, or
	// copytruncate (which, when the filesystem refused both fallocate methods in
	// the middle of a cut, takes that head at the next one). Empty when nothing
	// was cut or the call failed.
	Method Method
	// Fallbacks are the methods the filesystem refused during the call, each
	// for the next (with Method auto only); the File keeps to the last.
	Fallbacks []Fallback
	// Deleted counts the archives deleted during the call.
	Deleted Deleted
}

// Fallback is a move from a method the filesystem refused (EOPNOTSUPP) to the
// next one.
type Fallback struct{ From, To Method }

// Deleted counts archives deleted, by what made them go.
type Deleted struct {
	ByCount int // beyond MaxFiles
	ByAge   int // older than MaxAge
}

// report hands r what the call did besides its cut (the method fallbacks and the
// archives deleted), gathered in f while it ran, and starts f's gathering anew.
func (f *File) report(r *Result) {
	r.Fallbacks, r.Deleted = f.fallbacks, f.deleted
	f.fallbacks, f.deleted = nil, Deleted{}
}
