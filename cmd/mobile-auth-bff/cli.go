package main

import (
	"context"
	"encoding/json"

	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/admin"
	"github.com/openedx/mobile-auth-bff/store/postgres"
)

func migrateCommand(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: migrate up|down [N]|status", errUsage)
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	if cfg.DatabaseURL == "" {
		return errNeedsDatabase
	}
	pg, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{Timeout: cfg.DatabaseTimeout, MaxConns: int32(cfg.DatabaseMaxConns)})
	if err != nil {
		return err
	}
	defer pg.Close()
	switch args[0] {
	case "up":
		if err := pg.MigrateUp(ctx); err != nil {
			return err
		}
	case "down":
		steps := 1
		if len(args) > 1 {
			if steps, err = strconv.Atoi(args[1]); err != nil || steps < 1 {
				return fmt.Errorf("%w: migrate down [N], N ≥ 1", errUsage)
			}
		}
		if err := pg.MigrateDown(ctx, steps); err != nil {
			return err
		}
	case "status":
	default:
		return fmt.Errorf("%w: migrate up|down [N]|status", errUsage)
	}
	st, err := pg.MigrateStatus(ctx)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "version %d of %d", st.Version, st.Latest)
	if st.Dirty {
		_, err = fmt.Fprint(stdout, " (dirty: a migration failed halfway; repair the schema by hand)")
	}
	fmt.Fprintln(stdout)
	return err
}

const adminUsage = `admin commands (JSON on stdout; they need BFF_DATABASE_URL and BFF_SECRET):
  create-client --id ID [--name N] [--public] [--grant-types a,b] [--scopes a,b]
                [--token-type bearer|jwt] [--rollout 0-100] [--jwt-enabled=false] [--restricted]
                [--jwt-token-type JWT|Bearer] [--redirect-uris u1,u2] [--pkce-required=false]
                [--dpop-bound-access-tokens]
  list-clients
  get-client ID
  update-client ID [--name N] [--grant-types a,b] [--scopes a,b] [--token-type bearer|jwt]
                [--rollout 0-100] [--jwt-enabled true|false] [--restricted true|false]
                [--jwt-token-type JWT|Bearer|""] [--redirect-uris u1,u2|""] [--pkce-required true|false]
                [--dpop-bound-access-tokens true|false]
  delete-client ID
  rotate-client-secret ID [--grace 1h] [--secret-file F | --secret-stdin]
                a new secret for a confidential client (generated unless given), shown once;
                the replaced one keeps working for the grace (default 0s: stops at once)
  create-user --username U --email E [--name N] [--staff] [--superuser] [--password-file F | --password-stdin]
  get-user ID
  disable-user ID
  enable-user ID
  set-password ID (--password-file F | --password-stdin)
  link-identity ID --provider google-oauth2|facebook|apple-id|azuread-oauth2 --subject S
  list-identities ID
  unlink-identity ID --provider P --subject S
  list-keys
  rotate-keys
  migration [--period 24h|7d|30d|90d | --from RFC3339 [--to RFC3339]] [--bucket hour|day]
            the Bearer→JWT migration report (as GET /admin/migration), from the flushed statistics
`

func adminCommand(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		_, err := fmt.Fprint(stdout, adminUsage)
		return err
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	if cfg.DatabaseURL == "" {
		return errNeedsDatabase
	}
	// The CLI calls no payment service, and may run without an issuer
	// (requireIssuer), which the broker's JWTs would need.
	cfg.EcommerceURL = ""
	// Logs go to stderr so that stdout stays parseable JSON.
	a, err := newApp(ctx, cfg, newLogger(os.Stderr, cfg.LogLevel), cfg.Migrate, false)
	if err != nil {
		return err
	}
	defer a.store.Close()
	out, err := runAdmin(ctx, a.Admin, args[0], args[1:], cliActor())
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func cliActor() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return "cli:" + name
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// optional records whether a flag was given, for patches.
type optional struct {
	set bool
	val string
}

func (o *optional) String() string     { return o.val }
func (o *optional) Set(v string) error { o.set, o.val = true, v; return nil }

func readPassword(file string, fromStdin bool) (string, error) {
	return readSecret(file, fromStdin, "password")
}

// readSecret reads what --<flag>-file or --<flag>-stdin names: "" when
// neither is given.
func readSecret(file string, fromStdin bool, flag string) (string, error) {
	var b []byte
	var err error
	switch {
	case file != "" && fromStdin:
		return "", fmt.Errorf("%w: use --%s-file or --%s-stdin, not both", errUsage, flag, flag)
	case file != "":
		b, err = os.ReadFile(file)
	case fromStdin:
		b, err = io.ReadAll(io.LimitReader(os.Stdin, 4096))
	default:
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", flag, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func positionalID(fs *flag.FlagSet, what string) (string, error) {
	if fs.NArg() != 1 {
		return "", fmt.Errorf("%w: %s ID", errUsage, what)
	}
	return fs.Arg(0), nil
}

func positionalUserID(fs *flag.FlagSet, what string) (int64, error) {
	s, err := positionalID(fs, what)
	if err != nil {
		return 0, err
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w: user id must be a positive integer", bff.ErrInvalidInput)
	}
	return id, nil
}

// parseInterspersed parses flags that may come after positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return fs.Parse(append([]string{"--"}, pos...))
}

// runAdmin runs one admin command and returns what to print.
func runAdmin(ctx context.Context, svc *admin.Service, cmd string, args []string, actor string) (any, error) {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	switch cmd {
	case "create-client":
		var in admin.NewClient
		var grants, scopes, tokenType, redirectURIs string
		jwtEnabled, pkceRequired := true, true
		fs.StringVar(&in.ID, "id", "", "client id")
		fs.StringVar(&in.Name, "name", "", "display name")
		fs.BoolVar(&in.Public, "public", false, "public client (mobile app): no secret")
		fs.StringVar(&grants, "grant-types", "", "comma-separated grant types")
		fs.StringVar(&scopes, "scopes", "", "comma-separated scopes")
		fs.StringVar(&tokenType, "token-type", "bearer", "default token format: bearer or jwt")
		fs.IntVar(&in.JWTRolloutPercent, "rollout", 0, "JWT rollout percent")
		fs.BoolVar(&jwtEnabled, "jwt-enabled", true, "JWT kill switch")
		fs.BoolVar(&in.Restricted, "restricted", false, "restricted client: JWT only")
		fs.StringVar(&in.JWTTokenType, "jwt-token-type", "", "token_type of JWT responses: JWT, Bearer or empty (by request)")
		fs.StringVar(&redirectURIs, "redirect-uris", "", "comma-separated browser sign-in redirect URIs")
		fs.BoolVar(&pkceRequired, "pkce-required", true, "browser sign-in needs a PKCE S256 challenge")
		fs.BoolVar(&in.DPoPBoundAccessTokens, "dpop-bound-access-tokens", false, "every token request needs a DPoP proof (RFC 9449)")
		if err := parseInterspersed(fs, args); err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		in.GrantTypes, in.Scopes, in.TokenType, in.JWTEnabled = splitList(grants), splitList(scopes), bff.TokenFormat(tokenType), &jwtEnabled
		in.RedirectURIs, in.PKCERequired = splitList(redirectURIs), &pkceRequired
		if in.Scopes == nil {
			in.Scopes = []string{}
		}
		created, err := svc.CreateClient(ctx, in)
		if err != nil {
			return nil, err
		}
		v := admin.ViewClient(created.Client)
		v.Secret = created.Secret
		return v, nil
	case "list-clients":
		cs, err := svc.ListClients(ctx)
		if err != nil {
			return nil, err
		}
		return map[string]any{"clients": admin.ViewClients(cs)}, nil
	case "get-client", "delete-client":
		if err := parseInterspersed(fs, args); err != nil {
			return nil, err
		}
		id, err := positionalID(fs, cmd)
		if err != nil {
			return nil, err
		}
		if cmd == "delete-client" {
			return nil, svc.DeleteClient(ctx, id)
		}
		c, err := svc.GetClient(ctx, id)
		if err != nil {
			return nil, err
		}
		return admin.ViewClient(c), nil
	case "rotate-client-secret":
		var in admin.SecretRotation
		var secretFile string
		var secretStdin bool
		fs.StringVar(&in.Grace, "grace", "", "how long the replaced secret keeps working (Go duration, at most 168h)")
		fs.StringVar(&secretFile, "secret-file", "", "file holding the new secret (default: generate one)")
		fs.BoolVar(&secretStdin, "secret-stdin", false, "read the new secret from stdin")
		if err := parseInterspersed(fs, args); err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		id, err := positionalID(fs, cmd)
		if err != nil {
			return nil, err
		}
		// Never on the command line, where ps and shell histories see it.
		if in.Secret, err = readSecret(secretFile, secretStdin, "secret"); err != nil {
			return nil, err
		}
		rotated, err := svc.RotateClientSecret(ctx, id, in)
		if err != nil {
			return nil, err
		}
		v := admin.ViewClient(rotated.Client)
		v.Secret = rotated.Secret
		return v, nil
	case "update-client":
		var name, grants, scopes, tokenType, rollout, jwtEnabled, restricted, jwtTokenType, redirectURIs, pkceRequired, dpopBound optional
		fs.Var(&name, "name", "")
		fs.Var(&grants, "grant-types", "")
		fs.Var(&scopes, "scopes", "")
		fs.Var(&tokenType, "token-type", "")
		fs.Var(&rollout, "rollout", "")
		fs.Var(&jwtEnabled, "jwt-enabled", "")
		fs.Var(&restricted, "restricted", "")
		fs.Var(&jwtTokenType, "jwt-token-type", "")
		fs.Var(&redirectURIs, "redirect-uris", "")
		fs.Var(&pkceRequired, "pkce-required", "")
		fs.Var(&dpopBound, "dpop-bound-access-tokens", "")
		if err := parseInterspersed(fs, args); err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		id, err := positionalID(fs, cmd)
		if err != nil {
			return nil, err
		}
		var p admin.ClientPatch
		if name.set {
			p.Name = &name.val
		}
		if grants.set {
			g := splitList(grants.val)
			p.GrantTypes = &g
		}
		if scopes.set {
			s := splitList(scopes.val)
			p.Scopes = &s
		}
		if tokenType.set {
			t := bff.TokenFormat(tokenType.val)
			p.TokenType = &t
		}
		if jwtTokenType.set {
			p.JWTTokenType = &jwtTokenType.val
		}
		if redirectURIs.set {
			u := splitList(redirectURIs.val)
			if u == nil {
				u = []string{}
			}
			p.RedirectURIs = &u
		}
		if rollout.set {
			n, err := strconv.Atoi(rollout.val)
			if err != nil {
				return nil, fmt.Errorf("%w: --rollout must be an integer", bff.ErrInvalidInput)
			}
			p.JWTRolloutPercent = &n
		}
		for _, b := range []struct {
			o   optional
			dst **bool
		}{{jwtEnabled, &p.JWTEnabled}, {restricted, &p.Restricted}, {pkceRequired, &p.PKCERequired},
			{dpopBound, &p.DPoPBoundAccessTokens}} {
			if b.o.set {
				v, err := strconv.ParseBool(b.o.val)
				if err != nil {
					return nil, fmt.Errorf("%w: expected true or false, got %q", bff.ErrInvalidInput, b.o.val)
				}
				*b.dst = &v
			}
		}
		c, err := svc.UpdateClient(ctx, id, p)
		if err != nil {
			return nil, err
		}
		return admin.ViewClient(c), nil
	case "create-user":
		var in admin.NewUser
		var file string
		var stdin bool
		fs.StringVar(&in.Username, "username", "", "")
		fs.StringVar(&in.Email, "email", "", "")
		fs.StringVar(&in.Name, "name", "", "")
		fs.BoolVar(&in.IsStaff, "staff", false, "")
		fs.BoolVar(&in.IsSuperuser, "superuser", false, "")
		fs.StringVar(&file, "password-file", "", "")
		fs.BoolVar(&stdin, "password-stdin", false, "")
		if err := parseInterspersed(fs, args); err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		pw, err := readPassword(file, stdin)
		if err != nil {
			return nil, err
		}
		in.Password = pw
		u, err := svc.CreateUser(ctx, in)
		if err != nil {
			return nil, err
		}
		return admin.ViewUser(u), nil
	case "get-user", "disable-user", "enable-user", "set-password":
		var file string
		var stdin bool
		fs.StringVar(&file, "password-file", "", "")
		fs.BoolVar(&stdin, "password-stdin", false, "")
		if err := parseInterspersed(fs, args); err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		id, err := positionalUserID(fs, cmd)
		if err != nil {
			return nil, err
		}
		var u bff.User
		switch cmd {
		case "get-user":
			u, err = svc.GetUser(ctx, id)
		case "disable-user":
			u, err = svc.DisableUser(ctx, id, actor)
		case "enable-user":
			u, err = svc.EnableUser(ctx, id, actor)
		case "set-password":
			pw, perr := readPassword(file, stdin)
			if perr != nil {
				return nil, perr
			}
			if pw == "" {
				return nil, fmt.Errorf("%w: set-password needs --password-file or --password-stdin", errUsage)
			}
			if err := svc.SetPassword(ctx, id, pw, actor); err != nil {
				return nil, err
			}
			return map[string]any{"id": id, "password": "changed; existing tokens revoked"}, nil
		}
		if err != nil {
			return nil, err
		}
		return admin.ViewUser(u), nil
	case "link-identity", "list-identities", "unlink-identity":
		var provider, subject string
		fs.StringVar(&provider, "provider", "", "")
		fs.StringVar(&subject, "subject", "", "")
		if err := parseInterspersed(fs, args); err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		id, err := positionalUserID(fs, cmd)
		if err != nil {
			return nil, err
		}
		switch cmd {
		case "list-identities":
			ids, err := svc.ListIdentities(ctx, id)
			if err != nil {
				return nil, err
			}
			return map[string]any{"identities": admin.ViewIdentities(ids)}, nil
		case "unlink-identity":
			if provider == "" || subject == "" {
				return nil, fmt.Errorf("%w: unlink-identity ID --provider P --subject S", errUsage)
			}
			if err := svc.UnlinkIdentity(ctx, id, provider, subject); err != nil {
				return nil, err
			}
			return map[string]any{"user_id": id, "provider": provider, "subject": subject, "unlinked": true}, nil
		}
		ident, _, err := svc.LinkIdentity(ctx, id, provider, subject)
		if err != nil {
			return nil, err
		}
		return admin.ViewIdentity(ident), nil
	case "list-keys", "rotate-keys":
		list := svc.ListKeys
		if cmd == "rotate-keys" {
			list = svc.RotateKeys
		}
		keys, err := list(ctx)
		if err != nil {
			return nil, err
		}
		return map[string]any{"keys": keys}, nil
	case "migration":
		var period, from, to, bucket string
		fs.StringVar(&period, "period", "", "")
		fs.StringVar(&from, "from", "", "")
		fs.StringVar(&to, "to", "", "")
		fs.StringVar(&bucket, "bucket", "", "")
		if err := parseInterspersed(fs, args); err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		w, err := admin.ParseWindow(period, from, to, bucket, time.Now())
		if err != nil {
			return nil, err
		}
		return svc.Migration(ctx, w)
	}
	return nil, fmt.Errorf("%w: unknown admin command %q\n\n%s", errUsage, cmd, adminUsage)
}
