module github.com/tqflow/tqflow/schemas

go 1.26.0
