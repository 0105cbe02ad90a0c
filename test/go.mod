module github.com/tqflow/tqflow/test

go 1.26.0
