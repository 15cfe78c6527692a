// Licensed to the Apache Software Foundation (ASF) under one
// or more contributor license agreements.  See the NOTICE file
// distributed with this work for additional information
// regarding copyright ownership.  The ASF licenses this file
// to you under the Apache License, Version 2.0 (the
// "License"); you may not use this file except in compliance
// with the License.  You may obtain a copy of the License at
//
//   http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing,
// software distributed under the License is distributed on an
// "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY
// KIND, either express or implied.  See the License for the
// specific language governing permissions and limitations
// under the License.

//go:build pulsar_noschema

// Built with -tags pulsar_noschema (edgegw patch): the JSON, Protobuf,
// ProtoNative and Avro schemas of schema_codecs.go are left out, and with them
// github.com/hamba/avro/v2, json-iterator, reflect2 and the protobuf descriptor
// packages. Their types and constructors do not exist in such a build;
// NewSchema (which a consumer calls for a message's schema version) returns an
// error for their schema types.

package pulsar

import "fmt"

// newCodecSchema is NewSchema for the schema types left out of this build.
func newCodecSchema(schemaType SchemaType, _ string, _ map[string]string) (Schema, error) {
	var name string
	switch schemaType {
	case JSON:
		name = "json"
	case PROTOBUF:
		name = "protobuf"
	case AVRO:
		name = "avro"
	case ProtoNative:
		name = "protobuf native"
	default:
		return nil, fmt.Errorf("not support schema type of %v", schemaType)
	}
	return nil, fmt.Errorf("%s schemas are not included in this build (built with -tags pulsar_noschema)", name)
}
