//go:build !race

package strictjson_test

// raceEnabled is set under -race, where sync.Pool drops some of what it is
// given, so that Check allocates its working memory now and then.
const raceEnabled = false
