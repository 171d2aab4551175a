package main

import (
	"context"
	"net/http"
)

// The payment broker scenarios compare one GET through the broker with the
// same GET sent straight to the payment service (a bench/fakeupstream):
//
//	loadgen -url $BFF -scenario broker-get      # BFF_ECOMMERCE_URL=$UPSTREAM
//	loadgen -url $UPSTREAM -scenario direct-get

// brokerGet logs the user in once (a token of the format) and GETs -path
// through /api/ecommerce on every call.
func brokerGet(format string) func(context.Context, *target, int) ([]call, error) {
	return func(ctx context.Context, t *target, workers int) ([]call, error) {
		tok, err := t.login(ctx, t.cfg.clientID, format)
		if err != nil {
			return nil, err
		}
		path, authz := "/api/ecommerce"+t.cfg.paymentPath, "Bearer "+tok.AccessToken
		c := func(ctx context.Context) string {
			status, _, err := t.getWith(ctx, path, authz)
			return label(status, err)
		}
		return same(func(*target) call { return c })(ctx, t, workers)
	}
}

// directGet GETs -path from -url itself, with a JWT-sized Authorization
// header like the broker's: the payment service without the broker.
func directGet(t *target) call {
	authz := "JWT eyJhbGciOiJSUzI1NiIsImtpZCI6ImJlbmNoIiwidHlwIjoiSldUIn0.e30.c2lnbmF0dXJl"
	return func(ctx context.Context) string {
		status, _, err := t.getWith(ctx, t.cfg.paymentPath, authz)
		return label(status, err)
	}
}

// getWith is a GET with an Authorization header.
func (t *target) getWith(ctx context.Context, path, authorization string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.cfg.baseURL+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", authorization)
	req.Header.Set("Accept", "application/json")
	return t.do(req)
}
