package handlers

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/labstack/echo/v4"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/admin"
)

// maxAdminBody bounds admin API request bodies.
const maxAdminBody = 64 << 10

// decodeJSON reads a JSON body strictly: unknown fields and trailing data
// are errors, so that a typo in a field name is not silently ignored.
func decodeJSON(c echo.Context, v any) error { return decodeBody(c, v, true) }

// decodeOptionalJSON is decodeJSON for a body that may be left out: an
// empty body leaves v as it is.
func decodeOptionalJSON(c echo.Context, v any) error { return decodeBody(c, v, false) }

func decodeBody(c echo.Context, v any, required bool) error {
	r := c.Request()
	body := http.MaxBytesReader(c.Response(), r.Body, maxAdminBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errBodyTooLarge
		}
		if errors.Is(err, io.EOF) {
			if !required {
				return nil
			}
			return fmt.Errorf("%w: a JSON body is required", bff.ErrInvalidInput)
		}
		return fmt.Errorf("%w: malformed JSON body: %s", bff.ErrInvalidInput, jsonErrorText(err))
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data after the JSON body", bff.ErrInvalidInput)
	}
	return nil
}

// jsonErrorText keeps field names in decoding errors but not values.
func jsonErrorText(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return fmt.Sprintf("field %q must be %s", typeErr.Field, typeErr.Type)
	}
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return fmt.Sprintf("syntax error at offset %d", syntaxErr.Offset)
	}
	return err.Error()
}

func handleCreateClient(svc *admin.Service) echo.HandlerFunc {
	return func(c echo.Context) error {
		var in admin.NewClient
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
		created, err := svc.CreateClient(c.Request().Context(), in)
		if err != nil {
			return err
		}
		out := admin.ViewClient(created.Client)
		out.Secret = created.Secret
		c.Response().Header().Set("Cache-Control", "no-store")
		c.Response().Header().Set(echo.HeaderLocation, "/admin/clients/"+created.Client.ID)
		return c.JSON(http.StatusCreated, out)
	}
}

func handleListClients(svc *admin.Service) echo.HandlerFunc {
	return func(c echo.Context) error {
		clients, err := svc.ListClients(c.Request().Context())
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{"clients": admin.ViewClients(clients)})
	}
}

func handleGetClient(svc *admin.Service) echo.HandlerFunc {
	return func(c echo.Context) error {
		cl, err := svc.GetClient(c.Request().Context(), c.Param("id"))
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, admin.ViewClient(cl))
	}
}

func handleUpdateClient(svc *admin.Service) echo.HandlerFunc {
	return func(c echo.Context) error {
		var p admin.ClientPatch
		if err := decodeJSON(c, &p); err != nil {
			return err
		}
		cl, err := svc.UpdateClient(c.Request().Context(), c.Param("id"), p)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, admin.ViewClient(cl))
	}
}

func handleDeleteClient(svc *admin.Service) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := svc.DeleteClient(c.Request().Context(), c.Param("id")); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
}

func handleRotateClientSecret(svc *admin.Service) echo.HandlerFunc {
	return func(c echo.Context) error {
		var in admin.SecretRotation
		if err := decodeOptionalJSON(c, &in); err != nil {
			return err
		}
		rotated, err := svc.RotateClientSecret(c.Request().Context(), c.Param("id"), in)
		if err != nil {
			return err
		}
		out := admin.ViewClient(rotated.Client)
		out.Secret = rotated.Secret
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.JSON(http.StatusOK, out)
	}
}

func userID(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w: user id must be a positive integer", bff.ErrInvalidInput)
	}
	return id, nil
}

// adminActor names who made a change, for the audit trail.
func adminActor(c echo.Context) string {
	return "admin-api@" + c.RealIP()
}

func handleCreateUser(svc *admin.Service) echo.HandlerFunc {
	return func(c echo.Context) error {
		var in admin.NewUser
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
		u, err := svc.CreateUser(c.Request().Context(), in)
		if err != nil {
			return err
		}
		c.Response().Header().Set(echo.HeaderLocation, fmt.Sprintf("/admin/users/%d", u.ID))
		return c.JSON(http.StatusCreated, admin.ViewUser(u))
	}
}

func handleGetUser(svc *admin.Service) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := userID(c)
		if err != nil {
			return err
		}
		u, err := svc.GetUser(c.Request().Context(), id)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, admin.ViewUser(u))
	}
}

func handleDisableUser(svc *admin.Service) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := userID(c)
		if err != nil {
			return err
		}
		u, err := svc.DisableUser(c.Request().Context(), id, adminActor(c))
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, admin.ViewUser(u))
	}
}

func handleEnableUser(svc *admin.Service) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := userID(c)
		if err != nil {
			return err
		}
		u, err := svc.EnableUser(c.Request().Context(), id, adminActor(c))
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, admin.ViewUser(u))
	}
}

func handleSetPassword(svc *admin.Service) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := userID(c)
		if err != nil {
			return err
		}
		var in struct {
			Password string `json:"password"`
		}
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
		if err := svc.SetPassword(c.Request().Context(), id, in.Password, adminActor(c)); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
}

func handleListKeys(svc *admin.Service) echo.HandlerFunc {
	return func(c echo.Context) error {
		keys, err := svc.ListKeys(c.Request().Context())
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{"keys": keys})
	}
}

func handleRotateKeys(svc *admin.Service) echo.HandlerFunc {
	return func(c echo.Context) error {
		keys, err := svc.RotateKeys(c.Request().Context())
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{"keys": keys})
	}
}

// pathParam returns a path parameter decoded. Echo hands it over as it
// appears in the raw path when the request path needed escaping, and
// decoded otherwise.
func pathParam(c echo.Context, name string) (string, error) {
	v := c.Param(name)
	if c.Request().URL.RawPath == "" {
		return v, nil
	}
	d, err := url.PathUnescape(v)
	if err != nil {
		return "", fmt.Errorf("%w: %s is not a valid path segment", bff.ErrInvalidInput, name)
	}
	return d, nil
}

// identityLink is the body of POST /admin/users/{id}/identities.
type identityLink struct {
	Provider string `json:"provider"`
	Subject  string `json:"subject"`
}

func handleLinkIdentity(svc *admin.Service) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := userID(c)
		if err != nil {
			return err
		}
		var in identityLink
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
		ident, created, err := svc.LinkIdentity(c.Request().Context(), id, in.Provider, in.Subject)
		if err != nil {
			return err
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
			c.Response().Header().Set(echo.HeaderLocation, identityPath(ident))
		}
		return c.JSON(status, admin.ViewIdentity(ident))
	}
}

func identityPath(id bff.Identity) string {
	return fmt.Sprintf("/admin/users/%d/identities/%s/%s", id.UserID, url.PathEscape(id.Provider), url.PathEscape(id.Subject))
}

func handleListIdentities(svc *admin.Service) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := userID(c)
		if err != nil {
			return err
		}
		ids, err := svc.ListIdentities(c.Request().Context(), id)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{"identities": admin.ViewIdentities(ids)})
	}
}

func handleUnlinkIdentity(svc *admin.Service) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := userID(c)
		if err != nil {
			return err
		}
		provider, err := pathParam(c, "provider")
		if err != nil {
			return err
		}
		subject, err := pathParam(c, "subject")
		if err != nil {
			return err
		}
		if err := svc.UnlinkIdentity(c.Request().Context(), id, provider, subject); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
}
