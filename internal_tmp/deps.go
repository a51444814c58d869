package main
import (
 _ "github.com/valyala/fasthttp"
 _ "github.com/tetratelabs/wazero"
 _ "github.com/hashicorp/golang-lru/v2/expirable"
 _ "github.com/BurntSushi/toml"
 _ "github.com/cockroachdb/pebble/v2"
 _ "golang.org/x/time/rate"
 _ "github.com/HdrHistogram/hdrhistogram-go"
 _ "github.com/tidwall/gjson"
)
func main(){}
