package kv

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// MoveStale runs one move of key of table as MoveToParts would after
// reading it from the table's single hash, whatever that hash holds now.
func MoveStale(ctx context.Context, rdb redis.UniversalClient, table, key string) error {
	part, _ := partOf(key)
	keys := []string{redisTablePrefix + table, redisPartsPrefix + table, redisVersionKey, tableHash(table, key)}
	return moveToPart.Run(ctx, rdb, keys, key, part).Err()
}
