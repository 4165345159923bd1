package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"
)

// The event commit runs on the writer connection's driver side (sql.Conn.Raw). database/sql
// starts a goroutine per transaction to watch its context, rebinds prepared statements to the
// transaction and converts every argument into a fresh slice; on the store's one hot path (a
// commit per group of requests, 700 arguments per multi-row statement) that was a tenth of the
// writer's CPU and a thread wake-up per commit.

// The statements of the event commit, prepared once per driver connection.
var (
	insEventSQL  = `INSERT INTO events (id, type, source, subject, time, received_at, raw) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`
	insEventsSQL = `INSERT INTO events (id, type, source, subject, time, received_at, raw) VALUES ` +
		strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?),", insertChunk), ",") + ` ON CONFLICT (id) DO NOTHING`
	insRangeSQL = `INSERT INTO event_ranges (kind, key, first_seq, last_seq) VALUES (?, ?, ?, ?)`
)

// rawConn is the writer's driver connection with the event statements prepared on it.
type rawConn struct {
	dc                 driver.Conn
	ins, multi, insRng driver.Stmt
	args               []driver.NamedValue
}

// rawTx is one event transaction on the driver connection.
type rawTx struct {
	ctx context.Context
	c   *rawConn
}

// withEventTx runs fn in one write transaction on the writer connection's driver side and
// commits it; any error rolls it back.
func (s *Store) withEventTx(ctx context.Context, fn func(tx *rawTx) error) error {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("writer connection: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(dci any) error {
		c, err := s.rawFor(ctx, dci.(driver.Conn))
		if err != nil {
			return err
		}
		beginner, ok := dci.(driver.ConnBeginTx)
		if !ok {
			return errors.New("sqlite driver cannot begin a transaction with a context")
		}
		tx, err := beginner.BeginTx(ctx, driver.TxOptions{})
		if err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		if err := fn(&rawTx{ctx: ctx, c: c}); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	})
}

// rawFor returns the prepared statements for dc, preparing them when the pool's connection is
// new (the first commit, or after the pool replaced a broken one).
func (s *Store) rawFor(ctx context.Context, dc driver.Conn) (*rawConn, error) {
	if s.raw != nil && s.raw.dc == dc {
		return s.raw, nil
	}
	p, ok := dc.(driver.ConnPrepareContext)
	if !ok {
		return nil, errors.New("sqlite driver cannot prepare with a context")
	}
	c := &rawConn{dc: dc}
	for _, st := range []struct {
		to  *driver.Stmt
		sql string
	}{{&c.ins, insEventSQL}, {&c.multi, insEventsSQL}, {&c.insRng, insRangeSQL}} {
		var err error
		if *st.to, err = p.PrepareContext(ctx, st.sql); err != nil {
			c.close()
			return nil, fmt.Errorf("prepare event statements: %w", err)
		}
	}
	s.raw = c
	return c, nil
}

func (c *rawConn) close() {
	for _, st := range []driver.Stmt{c.ins, c.multi, c.insRng} {
		if st != nil {
			st.Close()
		}
	}
}

// closeRaw finalizes the prepared event statements (before the writer pool closes).
func (s *Store) closeRaw() {
	if s.raw == nil {
		return
	}
	conn, err := s.w.Conn(context.Background())
	if err != nil {
		return
	}
	defer conn.Close()
	conn.Raw(func(dci any) error {
		if s.raw.dc == dci.(driver.Conn) {
			s.raw.close()
		}
		s.raw = nil
		return nil
	})
}

// named fills the connection's reusable argument slice with vals as positional arguments.
func (tx *rawTx) named(vals []driver.Value) []driver.NamedValue {
	args := tx.c.args[:0]
	for i, v := range vals {
		args = append(args, driver.NamedValue{Ordinal: i + 1, Value: v})
	}
	tx.c.args = args
	return args
}

// exec runs a prepared statement with vals as its positional arguments.
func (tx *rawTx) exec(st driver.Stmt, vals ...driver.Value) (driver.Result, error) {
	args := tx.named(vals)
	res, err := st.(driver.StmtExecContext).ExecContext(tx.ctx, args)
	clear(args) // keep no event alive until the next commit
	return res, err
}

// execSQL runs a one-off statement (a multi-row insert of a size not prepared).
func (tx *rawTx) execSQL(query string, vals []driver.Value) error {
	ex, ok := tx.c.dc.(driver.ExecerContext)
	if !ok {
		return errors.New("sqlite driver cannot execute without preparing")
	}
	args := tx.named(vals)
	_, err := ex.ExecContext(tx.ctx, query, args)
	clear(args)
	return err
}

// query runs a one-off query and calls row for each row's values.
func (tx *rawTx) query(query string, vals []driver.Value, row func([]driver.Value) error) error {
	q, ok := tx.c.dc.(driver.QueryerContext)
	if !ok {
		return errors.New("sqlite driver cannot query without preparing")
	}
	rows, err := q.QueryContext(tx.ctx, query, tx.named(vals))
	if err != nil {
		return err
	}
	defer rows.Close()
	dest := make([]driver.Value, len(rows.Columns()))
	for {
		if err := rows.Next(dest); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if err := row(dest); err != nil {
			return err
		}
	}
}
