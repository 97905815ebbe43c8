package api

import (
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/nmp-project/nmp/internal/apierror"
	"github.com/nmp-project/nmp/internal/ident"
)

var (
	reResourceName = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`)
	reEntityType   = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	reEntityName   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,254}$`)
)

const maxDescription = 1024

var reservedEntityTypes = map[string]bool{"workspace": true, "project": true, "role_binding": true, "access_key": true}

// Each validator returns a 422 naming loc, or nil.

func validName(v string, loc ...string) error {
	if len(v) < 2 || !reResourceName.MatchString(v) || strings.Contains(v, "--") {
		return apierror.Validation("must be 2-63 characters of lowercase letters, digits and '-', start with a letter, not end with '-' and not contain '--'", loc...)
	}
	return nil
}

func validEntityType(v string, loc ...string) error {
	if !reEntityType.MatchString(v) {
		return apierror.Validation("must match ^[a-z][a-z0-9_]{0,62}$", loc...)
	}
	if reservedEntityTypes[v] {
		return apierror.Validation("'"+v+"' is a reserved entity type", loc...)
	}
	return nil
}

func validEntityName(v string, loc ...string) error {
	if !reEntityName.MatchString(v) {
		return apierror.Validation("must be 1-255 characters matching ^[A-Za-z0-9][A-Za-z0-9._@+-]*$", loc...)
	}
	return nil
}

func validPrincipal(v string, loc ...string) error {
	if !ident.ValidBindingPrincipal(v) {
		return apierror.Validation("must be '*' or a principal id of at most 256 characters from [A-Za-z0-9@._-:+/|]", loc...)
	}
	return nil
}

func validDescription(v string, loc ...string) error {
	if utf8.RuneCountInString(v) > maxDescription || !utf8.ValidString(v) {
		return apierror.Validation("must be valid UTF-8 of at most "+strconv.Itoa(maxDescription)+" characters", loc...)
	}
	return nil
}

// firstError returns the first non-nil error.
func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
