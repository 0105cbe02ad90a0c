module github.com/tqflow/tqflow/services/writer

go 1.26.0
