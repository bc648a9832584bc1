// Command provider-schema reads terraform-provider-aws's Go source and prints,
// as JSON, which attributes of the named resources force a replacement.
//
// It parses (never builds) the provider: a directory tree holding the
// provider's declarations, either a checkout of terraform-provider-aws or a
// per-declaration copy of it (one `.goindex` file per function, method, type
// or variable, as lonegunmanb/terraform-provider-aws-index publishes for each
// release). For each resource it reports:
//
//   - SDKv2: attributes with `ForceNew: true`, nested blocks included, and
//     whether the resource has an Update function (without one, every change
//     replaces it); attributes a CustomizeDiff forces new only on a condition
//     (`customdiff.ForceNewIf*`, `d.ForceNew(...)` in a package function);
//   - plugin framework: attributes and blocks with a `RequiresReplace*` plan
//     modifier, and whether the resource type embeds `framework.WithNoUpdate`.
//
// Attribute names are Terraform's; tools/provider-schema/generate.py maps them
// to Pulumi's. Whatever it cannot resolve (a schema built by code it does not
// follow) is listed under "unresolved", never dropped silently.
//
//	go run . -source DIR aws_db_instance aws_route53_health_check ...
//	go run . -source DIR -registered     # every registered resource type
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

const modulePath = "github.com/hashicorp/terraform-provider-aws/"

// Rule is one attribute (path of Terraform names) whose change replaces the resource.
type Rule struct {
	Path []string `json:"path"`
	// Input: the attribute is Optional or Required (a computed-only one is no input).
	Input bool `json:"input"`
	// When: "changed" (any change), "changedWhileSet" (Optional+Computed: removing it from
	// the program keeps the old value, no diff), "configured" (framework
	// RequiresReplaceIfConfigured), or "condition" (see Condition).
	When      string `json:"when"`
	Condition string `json:"condition,omitempty"`
}

// Resource is what the tool found for one Terraform resource type.
type Resource struct {
	Name       string   `json:"terraform"`
	Kind       string   `json:"kind"` // sdkv2 | framework
	Package    string   `json:"package"`
	Factory    string   `json:"factory"`
	Updatable  bool     `json:"updatable"`
	Region     string   `json:"region"` // the registration's Region setting
	Rules      []Rule   `json:"rules"`
	Unresolved []string `json:"unresolved,omitempty"`

	inputs map[string]bool // attribute path -> Optional or Required, from the schema walk
}

type pkg struct {
	dir     string
	funcs   map[string]*ast.FuncDecl // "name" and "Type.Method"
	types   map[string]*ast.TypeSpec
	values  map[string]ast.Expr // package-level var/const initialisers
	imports map[string]string   // local name -> module-relative dir (per file, merged)
}

type extractor struct {
	root     string
	fset     *token.FileSet
	packages map[string]*pkg
}

func main() {
	source := flag.String("source", "", "terraform-provider-aws checkout, or a per-declaration index of it")
	list := flag.Bool("registered", false, "print the names of every registered resource type and exit")
	flag.Parse()
	if *source == "" || (flag.NArg() == 0 && !*list) {
		fmt.Fprintln(os.Stderr, "usage: provider-schema -source DIR aws_resource_type...")
		os.Exit(2)
	}
	x := &extractor{root: *source, fset: token.NewFileSet(), packages: map[string]*pkg{}}
	if _, err := os.Stat(filepath.Join(*source, "index", "internal")); err == nil {
		x.root = filepath.Join(*source, "index")
	}
	registry, err := x.registrations()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *list {
		names := make([]string, 0, len(registry))
		for name := range registry {
			names = append(names, name)
		}
		sort.Strings(names)
		fmt.Println(strings.Join(names, "\n"))
		return
	}
	out := map[string]*Resource{}
	missing := []string{}
	for _, name := range flag.Args() {
		reg, ok := registry[name]
		if !ok {
			missing = append(missing, name)
			continue
		}
		out[name] = x.resource(reg)
	}
	if len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "not registered by any service package: %s\n", strings.Join(missing, ", "))
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// --- loading -------------------------------------------------------------------------

var (
	packageClause = regexp.MustCompile(`(?m)^package [^\n]*`)
	groupedSpec   = regexp.MustCompile(`(?m)^\t\w+`)
)

// load parses every declaration file of one package directory (relative to the module root).
func (x *extractor) load(dir string) *pkg {
	if p, ok := x.packages[dir]; ok {
		return p
	}
	p := &pkg{dir: dir, funcs: map[string]*ast.FuncDecl{}, types: map[string]*ast.TypeSpec{},
		values: map[string]ast.Expr{}, imports: map[string]string{}}
	x.packages[dir] = p
	entries, _ := os.ReadDir(filepath.Join(x.root, dir))
	for _, entry := range entries {
		name := entry.Name()
		if entry.IsDir() || strings.HasSuffix(name, "_test.go") ||
			!(strings.HasSuffix(name, ".go") || strings.HasSuffix(name, ".goindex")) {
			continue
		}
		text, err := os.ReadFile(filepath.Join(x.root, dir, name))
		if err != nil {
			continue
		}
		// An index file names its package by import path, which is not Go syntax, and keeps
		// a variable of a grouped `var (...)` declaration without its group.
		src := packageClause.ReplaceAllString(string(text), "package p")
		file, err := parser.ParseFile(x.fset, name, src, parser.SkipObjectResolution)
		if err != nil && (strings.HasPrefix(name, "var.") || strings.HasPrefix(name, "type.")) {
			if at := afterImports(src); at >= 0 {
				for _, keyword := range []string{"var", "const", "type"} {
					wrapped := src[:at] + keyword + " (\n" + src[at:] + "\n)\n"
					if file, err = parser.ParseFile(x.fset, name, wrapped, parser.SkipObjectResolution); err == nil {
						break
					}
				}
			}
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "skipping %s/%s: %v\n", dir, name, err)
			continue
		}
		for _, spec := range file.Imports {
			path, _ := strconv.Unquote(spec.Path.Value)
			local := path[strings.LastIndex(path, "/")+1:]
			if spec.Name != nil {
				local = spec.Name.Name
			}
			if strings.HasPrefix(path, modulePath) {
				p.imports[local] = strings.TrimPrefix(path, modulePath)
			} else if _, known := p.imports[local]; !known {
				p.imports[local] = "external:" + path
			}
		}
		for _, decl := range file.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				key := d.Name.Name
				if d.Recv != nil && len(d.Recv.List) == 1 {
					key = receiverType(d.Recv.List[0].Type) + "." + key
				}
				p.funcs[key] = d
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch s := spec.(type) {
					case *ast.TypeSpec:
						p.types[s.Name.Name] = s
					case *ast.ValueSpec:
						for i, n := range s.Names {
							if i < len(s.Values) {
								p.values[n.Name] = s.Values[i]
							}
						}
					}
				}
			}
		}
	}
	return p
}

// afterImports is where the first indented declaration line after the imports starts, or -1.
func afterImports(src string) int {
	start := 0
	if i := strings.Index(src, "\nimport ("); i >= 0 {
		if j := strings.Index(src[i:], "\n)"); j >= 0 {
			start = i + j + 2
		}
	}
	if at := groupedSpec.FindStringIndex(src[start:]); at != nil {
		return start + at[0]
	}
	return -1
}

func receiverType(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.StarExpr:
		return receiverType(t.X)
	case *ast.Ident:
		return t.Name
	case *ast.IndexExpr:
		return receiverType(t.X)
	case *ast.IndexListExpr:
		return receiverType(t.X)
	}
	return ""
}

type registration struct {
	name, dir, factory, kind, region string
}

// registrations reads every service package's SDKResources and FrameworkResources lists.
func (x *extractor) registrations() (map[string]registration, error) {
	services, err := os.ReadDir(filepath.Join(x.root, "internal", "service"))
	if err != nil {
		return nil, fmt.Errorf("no internal/service under %s: %w", x.root, err)
	}
	found := map[string]registration{}
	for _, service := range services {
		if !service.IsDir() {
			continue
		}
		p := x.load(filepath.Join("internal", "service", service.Name()))
		for method, kind := range map[string]string{"servicePackage.SDKResources": "sdkv2", "servicePackage.FrameworkResources": "framework"} {
			decl, ok := p.funcs[method]
			if !ok {
				continue
			}
			ast.Inspect(decl.Body, func(n ast.Node) bool {
				lit, ok := n.(*ast.CompositeLit)
				if !ok {
					return true
				}
				fields := keyed(lit)
				name, factory := stringLit(fields["TypeName"]), identName(fields["Factory"])
				if name == "" || factory == "" {
					return true
				}
				found[name] = registration{name: name, dir: p.dir, factory: factory, kind: kind, region: x.text(fields["Region"])}
				return false
			})
		}
	}
	return found, nil
}

// --- resources -----------------------------------------------------------------------

func (x *extractor) resource(reg registration) *Resource {
	r := &Resource{Name: reg.name, Kind: reg.kind, Package: reg.dir, Factory: reg.factory, Region: reg.region,
		Rules: []Rule{}, inputs: map[string]bool{}}
	p := x.load(reg.dir)
	factory, ok := p.funcs[reg.factory]
	if !ok {
		r.Unresolved = append(r.Unresolved, "factory "+reg.factory)
		return r
	}
	if reg.kind == "sdkv2" {
		x.sdkResource(r, p, factory)
	} else {
		x.frameworkResource(r, p, factory)
	}
	sort.Slice(r.Rules, func(i, j int) bool {
		return strings.Join(r.Rules[i].Path, ".") < strings.Join(r.Rules[j].Path, ".")
	})
	return r
}

func (x *extractor) sdkResource(r *Resource, p *pkg, factory *ast.FuncDecl) {
	lit := findComposite(factory.Body, "schema.Resource")
	if lit == nil {
		r.Unresolved = append(r.Unresolved, "no schema.Resource literal in "+factory.Name.Name)
		return
	}
	fields := keyed(lit)
	for _, key := range []string{"Update", "UpdateContext", "UpdateWithoutTimeout"} {
		if _, ok := fields[key]; ok {
			r.Updatable = true
		}
	}
	schemaExpr := fields["Schema"]
	if schemaExpr == nil {
		schemaExpr = fields["SchemaFunc"]
	}
	x.sdkSchema(r, p, schemaExpr, nil, 0)
	if cd, ok := fields["CustomizeDiff"]; ok {
		x.customizeDiff(r, p, cd, "", 0)
	}
}

// sdkSchema walks a map[string]*schema.Schema (however it is produced).
func (x *extractor) sdkSchema(r *Resource, p *pkg, e ast.Expr, prefix []string, depth int) {
	if depth > 8 {
		return
	}
	e, p = x.resolve(p, e)
	lit, ok := e.(*ast.CompositeLit)
	if !ok {
		r.Unresolved = append(r.Unresolved, fmt.Sprintf("schema of %s: %s", pathText(prefix), x.text(e)))
		return
	}
	x.eachAttribute(r, p, lit, prefix, func(path []string, f map[string]ast.Expr, ap *pkg) {
		r.inputs[strings.Join(path, ".")] = isTrue(f["Optional"]) || isTrue(f["Required"])
		if isTrue(f["ForceNew"]) {
			when := "changed"
			if isTrue(f["Computed"]) && isTrue(f["Optional"]) {
				when = "changedWhileSet"
			}
			r.Rules = append(r.Rules, Rule{Path: path, When: when, Input: isTrue(f["Optional"]) || isTrue(f["Required"])})
		}
		if elem, ok := f["Elem"]; ok {
			elemExpr, ep := x.resolve(ap, elem)
			if elemLit, ok := elemExpr.(*ast.CompositeLit); ok && identName(elemLit.Type) == "schema.Resource" {
				nested := keyed(elemLit)
				schemaExpr := nested["Schema"]
				if schemaExpr == nil {
					schemaExpr = nested["SchemaFunc"]
				}
				x.sdkSchema(r, ep, schemaExpr, path, depth+1)
			}
		}
	})
}

// eachAttribute calls visit with each entry of a schema map literal, its value resolved to
// the fields of a composite literal; what it cannot resolve goes to r.Unresolved.
func (x *extractor) eachAttribute(
	r *Resource, p *pkg, lit *ast.CompositeLit, prefix []string, visit func([]string, map[string]ast.Expr, *pkg),
) {
	for _, elt := range lit.Elts {
		kv, ok := elt.(*ast.KeyValueExpr)
		if !ok {
			continue
		}
		name := x.attributeName(p, kv.Key)
		if name == "" {
			r.Unresolved = append(r.Unresolved, fmt.Sprintf("key of %s: %s", pathText(prefix), x.text(kv.Key)))
			continue
		}
		path := append(append([]string{}, prefix...), name)
		value, vp := x.resolve(p, kv.Value)
		valueLit, ok := value.(*ast.CompositeLit)
		if !ok {
			r.Unresolved = append(r.Unresolved, fmt.Sprintf("attribute %s: %s", pathText(path), x.text(kv.Value)))
			continue
		}
		visit(path, keyed(valueLit), vp)
	}
}

// customizeDiff records the attributes a CustomizeDiff forces new on a condition.
// label names the package function the expression was found in ("" at the top level).
func (x *extractor) customizeDiff(r *Resource, p *pkg, e ast.Expr, label string, depth int) {
	if depth > 3 || e == nil {
		return
	}
	switch v := e.(type) {
	case *ast.CallExpr:
		callee := x.text(v.Fun)
		switch {
		case strings.HasPrefix(callee, "customdiff.ForceNewIf"):
			if len(v.Args) > 0 {
				name := x.attributeName(p, v.Args[0])
				condition := callee
				if len(v.Args) > 1 {
					if id := identName(v.Args[1]); id != "" {
						condition += ":" + id
					} else if label != "" {
						condition += ":" + label
					}
				}
				r.conditional(name, condition)
			}
		case strings.HasPrefix(callee, "customdiff."):
			for _, arg := range v.Args {
				x.customizeDiff(r, p, arg, label, depth+1)
			}
		default:
			// A package function that returns the CustomizeDiff function.
			if decl, dp := x.funcDecl(p, v.Fun); decl != nil {
				x.forceNewCalls(r, dp, decl.Body, decl.Name.Name, depth)
			}
		}
	case *ast.Ident, *ast.SelectorExpr:
		if decl, dp := x.funcDecl(p, v); decl != nil {
			x.forceNewCalls(r, dp, decl.Body, decl.Name.Name, depth)
		}
	case *ast.FuncLit:
		x.forceNewCalls(r, p, v.Body, "inline CustomizeDiff", depth)
	}
}

// conditional records an attribute a CustomizeDiff forces new; `name` may be a nested
// ResourceDiff key such as "vpc_config.0.subnet_ids".
func (r *Resource) conditional(name, condition string) {
	path := []string{}
	for _, part := range strings.Split(name, ".") {
		if _, err := strconv.Atoi(part); err != nil {
			path = append(path, part)
		}
	}
	input, known := r.inputs[strings.Join(path, ".")]
	// An attribute the schema walk did not see is reported as an input, so that generate.py
	// has to account for it.
	r.Rules = append(r.Rules, Rule{Path: path, When: "condition", Condition: condition, Input: input || !known})
}

// forceNewCalls finds `d.ForceNew("attr")` and nested customdiff helpers in a function body.
func (x *extractor) forceNewCalls(r *Resource, p *pkg, body *ast.BlockStmt, condition string, depth int) {
	if body == nil || depth > 3 {
		return
	}
	ast.Inspect(body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "ForceNew" && len(call.Args) == 1 {
			if name := x.attributeName(p, call.Args[0]); name != "" {
				r.conditional(name, condition)
			}
			return false
		}
		if strings.HasPrefix(x.text(call.Fun), "customdiff.") {
			x.customizeDiff(r, p, call, condition, depth+1)
			return false
		}
		// A helper such as engineVersionForceNewOnDowngrade(diff): the condition keeps the
		// name the CustomizeDiff list uses.
		if decl, dp := x.funcDecl(p, call.Fun); decl != nil {
			x.forceNewCalls(r, dp, decl.Body, condition, depth+1)
		}
		return true
	})
}

func (x *extractor) frameworkResource(r *Resource, p *pkg, factory *ast.FuncDecl) {
	typeName := ""
	ast.Inspect(factory.Body, func(n ast.Node) bool {
		if lit, ok := n.(*ast.CompositeLit); ok && typeName == "" {
			if id, ok := lit.Type.(*ast.Ident); ok {
				if _, local := p.types[id.Name]; local {
					typeName = id.Name
				}
			}
		}
		return typeName == ""
	})
	if typeName == "" {
		r.Unresolved = append(r.Unresolved, "resource type built by "+factory.Name.Name)
		return
	}
	r.Updatable = true
	if st, ok := p.types[typeName].Type.(*ast.StructType); ok {
		for _, field := range st.Fields.List {
			if len(field.Names) == 0 && strings.HasSuffix(x.text(field.Type), "WithNoUpdate") {
				r.Updatable = false
			}
		}
	}
	method := x.method(p, typeName, "Schema", 0)
	if method == nil {
		r.Unresolved = append(r.Unresolved, typeName+".Schema")
		return
	}
	lit := findComposite(method.Body, "schema.Schema")
	if lit == nil {
		r.Unresolved = append(r.Unresolved, "no schema.Schema literal in "+typeName+".Schema")
		return
	}
	x.frameworkObject(r, p, keyed(lit), nil, 0)
}

// method finds T.name, or the method of a local type T embeds (promoted methods).
func (x *extractor) method(p *pkg, typeName, name string, depth int) *ast.FuncDecl {
	if decl, ok := p.funcs[typeName+"."+name]; ok {
		return decl
	}
	spec, ok := p.types[typeName]
	if !ok || depth > 3 {
		return nil
	}
	if st, ok := spec.Type.(*ast.StructType); ok {
		for _, field := range st.Fields.List {
			if len(field.Names) == 0 {
				if decl := x.method(p, receiverType(field.Type), name, depth+1); decl != nil {
					return decl
				}
			}
		}
	}
	return nil
}

// frameworkObject walks the Attributes and Blocks of a schema or nested object.
func (x *extractor) frameworkObject(r *Resource, p *pkg, fields map[string]ast.Expr, prefix []string, depth int) {
	if depth > 8 {
		return
	}
	for _, key := range []string{"Attributes", "Blocks"} {
		e, ep := x.resolve(p, fields[key])
		lit, ok := e.(*ast.CompositeLit)
		if !ok {
			if fields[key] != nil {
				r.Unresolved = append(r.Unresolved, fmt.Sprintf("%s of %s: %s", key, pathText(prefix), x.text(fields[key])))
			}
			continue
		}
		x.eachAttribute(r, ep, lit, prefix, func(path []string, attr map[string]ast.Expr, vp *pkg) {
			if when, condition := x.requiresReplace(vp, attr["PlanModifiers"]); when != "" {
				// A block is configured by the program; an attribute when Optional or Required.
				input := isTrue(attr["Optional"]) || isTrue(attr["Required"]) || key == "Blocks"
				r.Rules = append(r.Rules, Rule{Path: path, When: when, Condition: condition, Input: input})
			}
			if obj, ok := attr["NestedObject"]; ok {
				objExpr, op := x.resolve(vp, obj)
				if objLit, ok := objExpr.(*ast.CompositeLit); ok {
					x.frameworkObject(r, op, keyed(objLit), path, depth+1)
				}
			} else if _, ok := attr["Attributes"]; ok {
				x.frameworkObject(r, vp, attr, path, depth+1)
			}
		})
	}
}

// requiresReplace reads a plan modifier list: RequiresReplace(), ...IfConfigured(), ...If(cond).
func (x *extractor) requiresReplace(p *pkg, e ast.Expr) (string, string) {
	lit, ok := e.(*ast.CompositeLit)
	if !ok {
		return "", ""
	}
	for _, elt := range lit.Elts {
		call, ok := elt.(*ast.CallExpr)
		if !ok {
			continue
		}
		callee := x.text(call.Fun)
		switch {
		case strings.HasSuffix(callee, ".RequiresReplace"):
			return "changed", ""
		case strings.HasSuffix(callee, ".RequiresReplaceIfConfigured"):
			return "configured", ""
		case strings.Contains(callee, ".RequiresReplaceIf"):
			condition := callee
			if len(call.Args) > 0 {
				if id := identName(call.Args[0]); id != "" {
					condition += ":" + id
				}
			}
			return "condition", condition
		}
	}
	return "", ""
}

// --- expression helpers --------------------------------------------------------------

// resolve follows an expression to the composite literal it stands for: `&T{}`, a call to a
// package function (its returned value), a FuncLit (SchemaFunc), or a package variable.
func (x *extractor) resolve(p *pkg, e ast.Expr) (ast.Expr, *pkg) {
	for i := 0; i < 12 && e != nil; i++ {
		switch v := e.(type) {
		case *ast.UnaryExpr:
			e = v.X
		case *ast.ParenExpr:
			e = v.X
		case *ast.FuncLit:
			e = returned(v.Body)
		case *ast.CallExpr:
			if decl, dp := x.funcDecl(p, v.Fun); decl != nil {
				e, p = returned(decl.Body), dp
				continue
			}
			if value, vp := x.packageValue(p, v.Fun); value != nil {
				// `var TagsSchema = sync.OnceValue(func() *schema.Schema {...})`, called as TagsSchema().
				// The argument is the function (a literal, or a call that returns one).
				if init, ok := value.(*ast.CallExpr); ok && len(init.Args) == 1 {
					e, p = init.Args[0], vp
					continue
				}
			}
			// maps.Clone(schema) is the schema.
			if x.text(v.Fun) == "maps.Clone" && len(v.Args) == 1 {
				e = v.Args[0]
				continue
			}
			return e, p
		case *ast.Ident:
			if value, ok := p.values[v.Name]; ok {
				e = value
				continue
			}
			return e, p
		default:
			return e, p
		}
	}
	return e, p
}

// declaringPackage resolves `name` or `pkg.name` to the module package that declares it.
func (x *extractor) declaringPackage(p *pkg, e ast.Expr) (string, *pkg) {
	switch v := e.(type) {
	case *ast.Ident:
		return v.Name, p
	case *ast.SelectorExpr:
		if pkgIdent, ok := v.X.(*ast.Ident); ok {
			if dir, ok := p.imports[pkgIdent.Name]; ok && !strings.HasPrefix(dir, "external:") {
				return v.Sel.Name, x.load(dir)
			}
		}
	}
	return "", nil
}

// packageValue finds a package-level variable named by `v` or `pkg.v` (module packages only).
func (x *extractor) packageValue(p *pkg, e ast.Expr) (ast.Expr, *pkg) {
	if name, owner := x.declaringPackage(p, e); owner != nil {
		if value, ok := owner.values[name]; ok {
			return value, owner
		}
	}
	return nil, nil
}

// funcDecl finds a package-level function named by `f` or `pkg.f` (module packages only).
func (x *extractor) funcDecl(p *pkg, fun ast.Expr) (*ast.FuncDecl, *pkg) {
	if f, ok := fun.(*ast.IndexExpr); ok { // generic instantiation
		return x.funcDecl(p, f.X)
	}
	if name, owner := x.declaringPackage(p, fun); owner != nil {
		if decl, ok := owner.funcs[name]; ok {
			return decl, owner
		}
	}
	return nil, nil
}

// returned is the value of a function body's last return statement, or the variable it returns
// when that variable is assigned a literal in the body.
func returned(body *ast.BlockStmt) ast.Expr {
	if body == nil {
		return nil
	}
	var result ast.Expr
	assigned := map[string]ast.Expr{}
	for _, stmt := range body.List {
		switch s := stmt.(type) {
		case *ast.ReturnStmt:
			if len(s.Results) > 0 {
				result = s.Results[0]
			}
		case *ast.AssignStmt:
			for i, lhs := range s.Lhs {
				if id, ok := lhs.(*ast.Ident); ok && i < len(s.Rhs) {
					assigned[id.Name] = s.Rhs[i]
				}
			}
		}
	}
	if id, ok := result.(*ast.Ident); ok {
		if value, ok := assigned[id.Name]; ok {
			return value
		}
	}
	return result
}

func findComposite(body *ast.BlockStmt, want string) *ast.CompositeLit {
	var found *ast.CompositeLit
	ast.Inspect(body, func(n ast.Node) bool {
		if lit, ok := n.(*ast.CompositeLit); ok && found == nil && identName(lit.Type) == want {
			found = lit
		}
		return found == nil
	})
	return found
}

func keyed(lit *ast.CompositeLit) map[string]ast.Expr {
	fields := map[string]ast.Expr{}
	for _, elt := range lit.Elts {
		if kv, ok := elt.(*ast.KeyValueExpr); ok {
			if id, ok := kv.Key.(*ast.Ident); ok {
				fields[id.Name] = kv.Value
			}
		}
	}
	return fields
}

// attributeName is a schema key: a string literal, a `names.Attr...` constant, or a package constant.
func (x *extractor) attributeName(p *pkg, e ast.Expr) string {
	switch v := e.(type) {
	case *ast.BasicLit:
		return stringLit(v)
	case *ast.SelectorExpr:
		if pkgIdent, ok := v.X.(*ast.Ident); ok && pkgIdent.Name == "names" && strings.HasPrefix(v.Sel.Name, "Attr") {
			return attrConstant(v.Sel.Name)
		}
		if value, _ := x.packageValue(p, v); value != nil {
			return stringLit(value)
		}
	case *ast.Ident:
		if value, ok := p.values[v.Name]; ok {
			return stringLit(value)
		}
	}
	return ""
}

var (
	pluralAcronym = strings.NewReplacer("IDs", "Ids", "ARNs", "Arns", "IPs", "Ips", "AZs", "Azs")
	lowerUpper    = regexp.MustCompile(`([a-z0-9])([A-Z])`)
	acronymWord   = regexp.MustCompile(`([A-Z]+)([A-Z][a-z])`)
)

// attrConstant turns `names.AttrKMSKeyID` into `kms_key_id`, as names/attr_consts_gen.go defines
// them. generate.py matches every name to a Pulumi SDK property ignoring underscores and case,
// and fails on any it cannot match, so a wrong split of an acronym cannot pass unnoticed.
func attrConstant(name string) string {
	rest := pluralAcronym.Replace(strings.TrimPrefix(name, "Attr"))
	rest = acronymWord.ReplaceAllString(rest, "${1}_${2}")
	rest = lowerUpper.ReplaceAllString(rest, "${1}_${2}")
	return strings.ToLower(rest)
}

func stringLit(e ast.Expr) string {
	if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
		s, _ := strconv.Unquote(lit.Value)
		return s
	}
	return ""
}

func identName(e ast.Expr) string {
	switch v := e.(type) {
	case *ast.Ident:
		return v.Name
	case *ast.SelectorExpr:
		return identName(v.X) + "." + v.Sel.Name
	}
	return ""
}

func isTrue(e ast.Expr) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == "true"
}

func pathText(path []string) string {
	if len(path) == 0 {
		return "resource"
	}
	return strings.Join(path, ".")
}

// text renders an expression compactly, for callee matching and messages.
func (x *extractor) text(e ast.Expr) string {
	if e == nil {
		return ""
	}
	return renderExpr(e)
}

func renderExpr(e ast.Expr) string {
	switch v := e.(type) {
	case *ast.Ident:
		return v.Name
	case *ast.SelectorExpr:
		return renderExpr(v.X) + "." + v.Sel.Name
	case *ast.CallExpr:
		return renderExpr(v.Fun) + "(...)"
	case *ast.IndexExpr:
		return renderExpr(v.X) + "[" + renderExpr(v.Index) + "]"
	case *ast.StarExpr:
		return "*" + renderExpr(v.X)
	case *ast.UnaryExpr:
		return v.Op.String() + renderExpr(v.X)
	case *ast.BasicLit:
		return v.Value
	case *ast.CompositeLit:
		return renderExpr(v.Type) + "{...}"
	case *ast.FuncLit:
		return "func(...)"
	}
	return fmt.Sprintf("%T", e)
}
