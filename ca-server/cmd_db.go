package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"madoguchi/ca-server/store"
)

func init() {
	register(command{name: "db", summary: "db migrate: apply store migrations as the database owner and set the serving role's privileges (PostgreSQL)", run: runDB})
}

// runDB: "db migrate --database OWNER_URL [--serving-role ROLE]".
//
// PostgreSQL in production runs with two roles (issue 13, threat 1; CPS
// §5.4): the owner role owns the schema and runs the migrations with this
// command; the serving role, whose URL serve and the local commands get
// in --database, owns no schema and may only SELECT and INSERT on the
// audit tables, so a stolen serving credential cannot rewrite history.
// Run it again after each upgrade: new tables get their grants. A serving
// role never migrates (the store refuses to start on an old schema and
// names this command). With a single URL (the owner's, in development and
// tests) serve still migrates at start and warns that it serves as owner.
// A SQLite store (--data-dir) is migrated by opening it.
func runDB(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "migrate" {
		return fmt.Errorf("%w: db migrate --database OWNER_URL [--serving-role ROLE] | db migrate --data-dir DIR", errUsage)
	}
	fs := flag.NewFlagSet("db migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "data directory (SQLite store DATA-DIR/ca.db)")
	database := databaseFlag(fs)
	serving := fs.String("serving-role", "", "PostgreSQL: the role serve connects as; gets SELECT and INSERT only on the audit tables, must own no schema")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	ctx := context.Background()
	if store.IsPostgresURL(*database) {
		if err := store.MigratePostgres(ctx, *database, *serving); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: schema current", store.RedactedURL(*database))
		if *serving != "" {
			fmt.Fprintf(stdout, "; role %s may read and append to the audit tables, never change them", *serving)
		}
		fmt.Fprintln(stdout)
		return nil
	}
	if *serving != "" {
		return fmt.Errorf("%w: --serving-role is for a PostgreSQL --database", errUsage)
	}
	if *dataDir == "" && *database == "" {
		return fmt.Errorf("%w: db migrate needs --database or --data-dir", errUsage)
	}
	path := *database
	if path == "" {
		path = storeDatabase(*dataDir, "")
	}
	st, err := store.OpenSQLite(ctx, path)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintf(stdout, "%s: schema current\n", path)
	return nil
}
