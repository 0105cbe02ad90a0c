module github.com/tqflow/tqflow/services/fetcher

go 1.26.0
