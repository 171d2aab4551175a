package oauth

// ForgetVerifiedJWTs empties the validator's cache of verified JWTs, so
// that a benchmark or test can measure or check the first presentation.
func (v *Validator) ForgetVerifiedJWTs() { v.verified.forget() }

// VerifiedJWTs is the number of JWTs the validator remembers as verified.
func (v *Validator) VerifiedJWTs() int { return v.verified.len() }
