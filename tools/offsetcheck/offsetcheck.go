// Package offsetcheck is a go/analysis pass that keeps the region's byte
// layout in one place: internal/abi, whose codecs (abi.Decode, abi.Encode,
// the *Off constants derived from the ABI structs) every other package
// uses. It reports, in the non-test files of every package that imports
// internal/abi (the packages that handle region bytes), a literal offset:
//
//   - an index or the low bound of a slice of a byte slice or array that
//     is a non-zero integer literal, or a sum or difference with one other
//     than 1 as an operand (b[24], b[8:], b[off+16:]); a product is a
//     stride, not an offset (b[8*i:] passes), x±1 steps over a delimiter
//     (b[end+1:] passes), and a high bound alone is a length (b[:64]);
//   - the offset argument of unsafe.Add, or of any function whose
//     parameter is named off, offset or ...Off (ld32(p, off)), written
//     the same way.
//
// These are how binary.LittleEndian reads and atomic loads of region
// fields were written before the codecs existed. Bytes that are not region
// bytes (an ELF file, a BPF instruction, a BPF program's event) are
// allowed with a comment "//kushm:offsets-ok <why>" at the end of the
// statement's first line, on the line above the statement, or in the doc
// comment of the enclosing function. `make check` runs it (make
// offset-check); its test proves it fails on a planted literal offset.
package offsetcheck

import (
	"go/ast"
	"go/constant"
	"go/token"
	"go/types"
	"strings"

	"golang.org/x/tools/go/analysis"
)

// ABIPath is the import path of the package that owns the layout.
const ABIPath = "github.com/kushm/kushm/internal/abi"

// Directive allows literal offsets into bytes that are not region bytes.
const Directive = "//kushm:offsets-ok"

// Analyzer reports literal region offsets outside internal/abi.
var Analyzer = &analysis.Analyzer{
	Name: "offsetcheck",
	Doc:  "report literal byte offsets outside internal/abi in packages that handle region bytes",
	Run:  run,
}

func run(pass *analysis.Pass) (any, error) {
	path := pass.Pkg.Path()
	if path == ABIPath || strings.HasPrefix(path, ABIPath+"/") || !importsABI(pass.Pkg) {
		return nil, nil
	}
	for _, f := range pass.Files {
		name := pass.Fset.File(f.Pos()).Name()
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		allowed := allowedLines(pass.Fset, f)
		ast.Inspect(f, func(n ast.Node) bool {
			if fd, ok := n.(*ast.FuncDecl); ok && fd.Doc != nil && hasDirective(fd.Doc) {
				return false
			}
			report := func(at ast.Node, what string) {
				if allowed[pass.Fset.Position(at.Pos()).Line] {
					return
				}
				pass.Reportf(at.Pos(), "literal region offset %s outside internal/abi: use the abi codec or an abi offset constant (bytes that are not region bytes: %s <why>)", what, Directive)
			}
			switch x := n.(type) {
			case *ast.IndexExpr:
				if isBytes(pass.TypesInfo.TypeOf(x.X)) && offsetLiteral(pass, x.Index) {
					report(x.Index, render(pass.Fset, x))
				}
			case *ast.SliceExpr:
				if !isBytes(pass.TypesInfo.TypeOf(x.X)) {
					break
				}
				// The low bound is where a field starts; a high bound
				// alone (b[:64]) is a length.
				if x.Low != nil && offsetLiteral(pass, x.Low) {
					report(x.Low, render(pass.Fset, x))
				}
			case *ast.CallExpr:
				if isUnsafeAdd(pass, x) && len(x.Args) == 2 && offsetLiteral(pass, x.Args[1]) {
					report(x.Args[1], render(pass.Fset, x))
					break
				}
				// A helper that takes an offset (ld32(p, off),
				// ctlU32(off)): its parameter is named off or offset.
				if sig, ok := pass.TypesInfo.TypeOf(x.Fun).(*types.Signature); ok {
					for i, arg := range x.Args {
						if i < sig.Params().Len() && isOffsetParam(sig.Params().At(i)) && offsetLiteral(pass, arg) {
							report(arg, render(pass.Fset, x))
						}
					}
				}
			}
			return true
		})
	}
	return nil, nil
}

func importsABI(p *types.Package) bool {
	for _, i := range p.Imports() {
		if i.Path() == ABIPath {
			return true
		}
	}
	return false
}

func hasDirective(g *ast.CommentGroup) bool {
	for _, c := range g.List {
		if strings.HasPrefix(c.Text, Directive) {
			return true
		}
	}
	return false
}

// allowedLines returns the lines a directive covers: its own line, and
// every line of the statement that starts on it or on the next line.
func allowedLines(fset *token.FileSet, f *ast.File) map[int]bool {
	dirs := map[int]bool{}
	for _, g := range f.Comments {
		for _, c := range g.List {
			if strings.HasPrefix(c.Text, Directive) {
				dirs[fset.Position(c.Pos()).Line] = true
			}
		}
	}
	m := map[int]bool{}
	for l := range dirs {
		m[l] = true
	}
	ast.Inspect(f, func(n ast.Node) bool {
		st, ok := n.(ast.Stmt)
		if !ok {
			return true
		}
		start, end := fset.Position(st.Pos()).Line, fset.Position(st.End()).Line
		if dirs[start] || dirs[start-1] {
			for l := start; l <= end; l++ {
				m[l] = true
			}
		}
		return true
	})
	return m
}

// isBytes: []byte, [N]byte or *[N]byte.
func isBytes(t types.Type) bool {
	if t == nil {
		return false
	}
	if p, ok := t.Underlying().(*types.Pointer); ok {
		t = p.Elem()
	}
	var elem types.Type
	switch u := t.Underlying().(type) {
	case *types.Slice:
		elem = u.Elem()
	case *types.Array:
		elem = u.Elem()
	default:
		return false
	}
	b, ok := elem.Underlying().(*types.Basic)
	return ok && (b.Kind() == types.Byte || b.Kind() == types.Uint8)
}

// offsetLiteral: a non-zero integer literal, or a + or - with one as a
// direct operand (parentheses looked through).
func offsetLiteral(pass *analysis.Pass, e ast.Expr) bool {
	switch x := ast.Unparen(e).(type) {
	case *ast.BasicLit:
		if x.Kind != token.INT {
			return false
		}
		v := constant.MakeFromLiteral(x.Value, x.Kind, 0)
		return constant.Sign(v) != 0
	case *ast.BinaryExpr:
		// x±1 steps over a delimiter (text parsing, len(b)-1), it is
		// not a field offset; x±8 is.
		if x.Op == token.ADD || x.Op == token.SUB {
			return (offsetLiteral(pass, x.X) && !isOne(x.X)) || (offsetLiteral(pass, x.Y) && !isOne(x.Y))
		}
	case *ast.CallExpr: // a conversion: uintptr(8), int(off+8)
		if tv, ok := pass.TypesInfo.Types[x.Fun]; ok && tv.IsType() && len(x.Args) == 1 {
			return offsetLiteral(pass, x.Args[0])
		}
	}
	return false
}

func isOffsetParam(v *types.Var) bool {
	n := strings.ToLower(v.Name())
	return n == "off" || n == "offset" || strings.HasSuffix(n, "off") && len(n) > 3 && !strings.HasSuffix(n, "backoff")
}

func isOne(e ast.Expr) bool {
	l, ok := ast.Unparen(e).(*ast.BasicLit)
	return ok && l.Kind == token.INT && l.Value == "1"
}

func isUnsafeAdd(pass *analysis.Pass, c *ast.CallExpr) bool {
	sel, ok := ast.Unparen(c.Fun).(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "Add" {
		return false
	}
	id, ok := sel.X.(*ast.Ident)
	if !ok {
		return false
	}
	pn, ok := pass.TypesInfo.Uses[id].(*types.PkgName)
	return ok && pn.Imported().Path() == "unsafe"
}

func render(fset *token.FileSet, n ast.Node) string {
	var b strings.Builder
	if err := formatNode(&b, fset, n); err != nil {
		return "?"
	}
	s := b.String()
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return s
}
