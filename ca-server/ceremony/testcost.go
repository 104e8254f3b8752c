package ceremony

// UseTestCosts lowers the argon2id cost of new share seals and staff
// credentials to the smallest accepted (8 MiB, one pass) until the test
// ends. Tests only: command tests run many ceremonies under -race.
func UseTestCosts(t interface{ Cleanup(func()) }) {
	seal, cred := sealCost, credentialCost
	low := argonCost{1, argonMinMemKiB, 1}
	sealCost, credentialCost = low, low
	t.Cleanup(func() { sealCost, credentialCost = seal, cred })
}
