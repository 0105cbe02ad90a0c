<?php
// golden-gen.php computes testdata/golden.json by running MISP's own value
// pipeline (MispAttribute::beforeValidateMassage then the $validate rules on
// value, MISP 2.5.1) under PHP's CLI with the intl extension:
//
//   php golden-gen.php /path/to/MISP/app < golden-cases.json > golden.json
//
// golden-cases.json lists [type, value] or [type, value, source]: rows
// without a source are AttributeValidationToolTest.php's values (the first
// 49) followed by edge values of misp.md's corrections; ComplexTypeToolTest
// rows name their file. MISP 2.5.1 (bb0909a3), PHP 8.2.36, ICU 72.1.
//
// MISP's code is loaded from a MISP checkout given on the command line; none
// of it is copied here. Only the rules tqflow depends on are reproduced:
// stringNotEmpty, stringNotControlCharacters, validateAttributeValue and
// maxTextLength (uniqueness needs a database and is tested elsewhere).
if (!function_exists('__')) {
    function __($singular, $args = null)
    {
        $arguments = func_get_args();
        return vsprintf($singular, array_slice($arguments, 1));
    }
}
$app = $argv[1];
require_once $app . '/Lib/Tools/ComplexTypeTool.php';
require_once $app . '/Lib/Tools/AttributeValidationTool.php';

$cases = json_decode(file_get_contents('php://stdin'), true);
$out = [];
foreach ($cases as $c) {
    [$type, $value] = $c;
    $source = $c[2] ?? null;
    $v = ComplexTypeTool::refangValue(trim($value), $type);
    $v = AttributeValidationTool::modifyBeforeValidation($type, $v);
    $v = (string)$v;
    $err = null;
    $t = trim($v);
    if ($t == false && $t !== "0") {
        $err = 'Value cannot be empty.';
    } elseif (ctype_cntrl($v)) {
        $err = 'Value provided consists purely of control characters and is therefore considered to be empty.';
    } else {
        $r = AttributeValidationTool::validate($type, $v);
        if ($r !== true) {
            $err = is_string($r) ? $r : 'Value not in the right type/format. Please double check the value or select type "other".';
        } elseif (strlen($v) > 65535) {
            $err = 'The entered string is too long and would get truncated. Please consider adding the data as an attachment instead';
        }
    }
    $row = ['type' => $type, 'in' => $value];
    if ($source !== null) {
        $row['source'] = $source;
    }
    if ($err === null) {
        $row['out'] = $v;
    } else {
        $row['error'] = $err;
    }
    $out[] = $row;
}
echo json_encode($out, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE), "\n";
