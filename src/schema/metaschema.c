/*
 * The draft-07 meta-schema, embedded: the standard document published at
 * http://json-schema.org/draft-07/schema, kept here as compact JSON text so
 * that the validator never needs the network (or a file) to check that a
 * schema is a schema, and so that "$ref": "http://json-schema.org/draft-07/
 * schema#" inside user schemas resolves to a known, fixed document.
 *
 * It is data, not code: to update it, replace the text with the published
 * document re-serialized compactly, and run the suite.
 */
#include "schema/schema_int.h"

#include "core/banned.h"

const char schema_metaschema_uri[] = "http://json-schema.org/draft-07/schema";

const char schema_metaschema_text[] =
	"{\"$schema\":\"http://json-schema.org/draft-07/schema#\",\"$id\":\"http://json-"
	"schema.org/draft-07/schema#\",\"title\":\"Core schema meta-schema\",\"definiti"
	"ons\":{\"schemaArray\":{\"type\":\"array\",\"minItems\":1,\"items\":{\"$ref\":\"#\"}},\""
	"nonNegativeInteger\":{\"type\":\"integer\",\"minimum\":0},\"nonNegativeIntegerDe"
	"fault0\":{\"allOf\":[{\"$ref\":\"#/definitions/nonNegativeInteger\"},{\"default\""
	":0}]},\"simpleTypes\":{\"enum\":[\"array\",\"boolean\",\"integer\",\"null\",\"number\""
	",\"object\",\"string\"]},\"stringArray\":{\"type\":\"array\",\"items\":{\"type\":\"stri"
	"ng\"},\"uniqueItems\":true,\"default\":[]}},\"type\":[\"object\",\"boolean\"],\"prop"
	"erties\":{\"$id\":{\"type\":\"string\",\"format\":\"uri-reference\"},\"$schema\":{\"ty"
	"pe\":\"string\",\"format\":\"uri\"},\"$ref\":{\"type\":\"string\",\"format\":\"uri-refer"
	"ence\"},\"$comment\":{\"type\":\"string\"},\"title\":{\"type\":\"string\"},\"descripti"
	"on\":{\"type\":\"string\"},\"default\":true,\"readOnly\":{\"type\":\"boolean\",\"defau"
	"lt\":false},\"examples\":{\"type\":\"array\",\"items\":true},\"multipleOf\":{\"type\""
	":\"number\",\"exclusiveMinimum\":0},\"maximum\":{\"type\":\"number\"},\"exclusiveMa"
	"ximum\":{\"type\":\"number\"},\"minimum\":{\"type\":\"number\"},\"exclusiveMinimum\":"
	"{\"type\":\"number\"},\"maxLength\":{\"$ref\":\"#/definitions/nonNegativeInteger\""
	"},\"minLength\":{\"$ref\":\"#/definitions/nonNegativeIntegerDefault0\"},\"patte"
	"rn\":{\"type\":\"string\",\"format\":\"regex\"},\"additionalItems\":{\"$ref\":\"#\"},\"i"
	"tems\":{\"anyOf\":[{\"$ref\":\"#\"},{\"$ref\":\"#/definitions/schemaArray\"}],\"defa"
	"ult\":true},\"maxItems\":{\"$ref\":\"#/definitions/nonNegativeInteger\"},\"minIt"
	"ems\":{\"$ref\":\"#/definitions/nonNegativeIntegerDefault0\"},\"uniqueItems\":{"
	"\"type\":\"boolean\",\"default\":false},\"contains\":{\"$ref\":\"#\"},\"maxProperties"
	"\":{\"$ref\":\"#/definitions/nonNegativeInteger\"},\"minProperties\":{\"$ref\":\"#"
	"/definitions/nonNegativeIntegerDefault0\"},\"required\":{\"$ref\":\"#/definiti"
	"ons/stringArray\"},\"additionalProperties\":{\"$ref\":\"#\"},\"definitions\":{\"ty"
	"pe\":\"object\",\"additionalProperties\":{\"$ref\":\"#\"},\"default\":{}},\"properti"
	"es\":{\"type\":\"object\",\"additionalProperties\":{\"$ref\":\"#\"},\"default\":{}},\""
	"patternProperties\":{\"type\":\"object\",\"additionalProperties\":{\"$ref\":\"#\"},"
	"\"propertyNames\":{\"format\":\"regex\"},\"default\":{}},\"dependencies\":{\"type\":"
	"\"object\",\"additionalProperties\":{\"anyOf\":[{\"$ref\":\"#\"},{\"$ref\":\"#/defini"
	"tions/stringArray\"}]}},\"propertyNames\":{\"$ref\":\"#\"},\"const\":true,\"enum\":"
	"{\"type\":\"array\",\"items\":true},\"type\":{\"anyOf\":[{\"$ref\":\"#/definitions/si"
	"mpleTypes\"},{\"type\":\"array\",\"items\":{\"$ref\":\"#/definitions/simpleTypes\"}"
	",\"minItems\":1,\"uniqueItems\":true}]},\"format\":{\"type\":\"string\"},\"contentM"
	"ediaType\":{\"type\":\"string\"},\"contentEncoding\":{\"type\":\"string\"},\"if\":{\"$"
	"ref\":\"#\"},\"then\":{\"$ref\":\"#\"},\"else\":{\"$ref\":\"#\"},\"allOf\":{\"$ref\":\"#/def"
	"initions/schemaArray\"},\"anyOf\":{\"$ref\":\"#/definitions/schemaArray\"},\"one"
	"Of\":{\"$ref\":\"#/definitions/schemaArray\"},\"not\":{\"$ref\":\"#\"}},\"default\":t"
	"rue}";
